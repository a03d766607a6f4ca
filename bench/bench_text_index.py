"""Local text index benchmark: build time, query latency, peak memory, wrapper overhead.

    nice -n 10 .venv/bin/python bench/bench_text_index.py                 # 1M documents
    .venv/bin/python bench/bench_text_index.py --docs 20000 --queries 300   # quick

Generates a deterministic Zipf corpus of short documents (``bench/text_corpus.py``), then for each
engine (tantivy, bm25s) runs, each in a fresh child process so that peak RSS is its own:

1. build: ``build_index(corpus, out, engine)`` — wall time and peak RSS (goal: < 3 min at 1M);
2. query: opens the index and runs the same queries (3–5 words, k = 5) through
   - ``bare``: the engine alone, doing the same retrieval work (tantivy: the same flat term query
     + stored-document fetch; bm25s: ``retrieve`` + document fetch),
   - ``parser``: tantivy's own ``parse_query`` (what a direct user would write), for reference,
   - ``wrapper``: ``BM25TextSearch.search_sync`` (query clean-up, snippets, SearchHit records),
   - ``async``: ``await BM25TextSearch.search`` on a running event loop (the toolbox's path),
   - ``thread``: the same with ``threaded=True`` (adds the worker-thread hop),
   interleaved query by query so that machine noise hits all variants alike. It prints median and
   p95 latency (goal: median < 5 ms) and the wrapper/bare ratio of medians (goal: <= 1.2).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

GOALS = {"build_s": 180.0, "p50_ms": 5.0, "overhead": 1.2}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def child_build(corpus: str, out: str, engine: str) -> dict:
    from deepmmsearch.tools.text.bm25 import build_index

    info = build_index(corpus, out, engine=engine, show_progress=False, overwrite=True)
    return {"build_s": info.build_s, "n_docs": info.n_docs, "size_mb": info.size_bytes / 1e6,
            "build_rss_mb": _peak_rss_mb(), "build_cpu_s": time.process_time()}


def _bare(search):
    """The engine alone, doing the retrieval work the wrapper does (minus clean-up and snippets)."""
    eng = search.engine
    if search.info.engine == "tantivy":
        def run(q: str):
            query = eng.query(q.split())
            hits = eng.searcher.search(query, 5, count=False).hits if query is not None else []
            return [eng.searcher.doc(a) for _, a in hits]

        def parser(q: str):
            query = eng.index.parse_query_lenient(q, ["title", "text"])[0]
            return [eng.searcher.doc(a) for _, a in eng.searcher.search(query, 5, count=False).hits]

        return run, parser

    from deepmmsearch.tools.text.snippets import s_stem

    def run_b(q: str):  # the same tokens the wrapper sends (stop words out, S-stemmed)
        words = [s_stem(w) for w in q.split() if len(w) > 1 and w not in eng.stopwords]
        if not words:
            return []
        res = eng.retriever.retrieve([words], k=5, show_progress=False, n_threads=0)
        return [eng.doc(int(i)) for i, s in zip(res.documents[0], res.scores[0]) if s > 0]

    return run_b, None


def child_query(index: str, queries_file: str, budget_s: str = "120") -> dict:
    import asyncio

    from deepmmsearch.tools.text.bm25 import BM25TextSearch

    t0 = time.perf_counter()
    search = BM25TextSearch(index)
    open_s = time.perf_counter() - t0
    queries = json.loads(Path(queries_file).read_text())
    bare, parser = _bare(search)
    variants = {"bare": bare, "wrapper": lambda q: search.search_sync(q, 5)}
    if parser is not None:
        variants["parser"] = parser
    for q in queries[:50]:  # warm-up: page in the index
        for fn in variants.values():
            fn(q)
    threaded = BM25TextSearch(index, threaded=True)
    lat: dict[str, list[float]] = {name: [] for name in [*variants, "async", "thread"]}
    loop = asyncio.new_event_loop()
    t_end = time.perf_counter() + float(budget_s)
    for n, q in enumerate(queries):
        if n >= 100 and time.perf_counter() > t_end:  # slow engines: stop at the time budget
            break
        for name, fn in variants.items():
            t = time.perf_counter()
            fn(q)
            lat[name].append(time.perf_counter() - t)
        for name, backend in (("async", search), ("thread", threaded)):
            t = time.perf_counter()
            loop.run_until_complete(backend.search(q, 5))
            lat[name].append(time.perf_counter() - t)
    loop.close()
    out = {"open_s": open_s, "query_rss_mb": _peak_rss_mb(), "n_queries": len(lat["bare"])}
    for name, values in lat.items():
        out[name] = {"p50_ms": _pct(values, 0.5), "p95_ms": _pct(values, 0.95),
                     "mean_ms": statistics.fmean(values) * 1000}
    return out


def _run_child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", *args],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _report(engine: str, b: dict, q: dict) -> list[str]:
    ratio = q["wrapper"]["p50_ms"] / q["bare"]["p50_ms"]
    build_ok = "met" if b["build_s"] < GOALS["build_s"] else "MISSED"
    head = (f"{engine}: {b['n_docs']} docs, build {b['build_s']:.1f}s wall / "
            f"{b['build_cpu_s']:.1f}s CPU (goal < {GOALS['build_s']:.0f}s: {build_ok}), "
            f"index {b['size_mb']:.0f} MB, peak RSS build {b['build_rss_mb']:.0f} MB / "
            f"query {q['query_rss_mb']:.0f} MB, open {q['open_s'] * 1000:.0f} ms, "
            f"{q['n_queries']} queries")
    lines = [head]
    for name in ("bare", "parser", "wrapper", "async", "thread"):
        if name in q:
            r = q[name]
            lines.append(f"  {name:8s} p50 {r['p50_ms']:.3f} ms  p95 {r['p95_ms']:.3f} ms  "
                         f"mean {r['mean_ms']:.3f} ms  ({r['p50_ms'] / q['bare']['p50_ms']:.2f}x bare)")
    lines.append(f"  wrapper/bare median ratio {ratio:.2f} (goal <= {GOALS['overhead']}: "
                 f"{'met' if ratio <= GOALS['overhead'] else 'MISSED'}); wrapper median "
                 f"{q['wrapper']['p50_ms']:.2f} ms (goal < {GOALS['p50_ms']:.0f} ms: "
                 f"{'met' if q['wrapper']['p50_ms'] < GOALS['p50_ms'] else 'MISSED'})")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--docs", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--engines", default="tantivy,bm25s")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--query-budget-s", type=float, default=120.0,
                   help="stop an engine's query loop after this long (at least 100 queries)")
    p.add_argument("--workdir", help="keep the corpus and indexes here (default: a temp dir)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        print(json.dumps(child_build(*rest) if kind == "build" else child_query(*rest)))
        return 0
    from text_corpus import make_queries, write_corpus

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_text_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        corpus = work / f"corpus_{args.docs}_{args.seed}.jsonl"
        if not corpus.exists():
            t0 = time.perf_counter()
            write_corpus(corpus, args.docs, args.seed)
            print(f"generated {args.docs} documents in {time.perf_counter() - t0:.1f}s", flush=True)
        queries = work / f"queries_{args.queries}_{args.seed}.json"
        queries.write_text(json.dumps(make_queries(corpus, args.queries, args.seed)))
        report = []
        for engine in args.engines.split(","):
            out = work / f"index_{engine}"
            b = _run_child("build", str(corpus), str(out), engine)
            print(f"{engine}: built in {b['build_s']:.1f}s", flush=True)
            q = _run_child("query", str(out), str(queries), str(args.query_budget_s))
            report += _report(engine, b, q)
            if not args.workdir:
                shutil.rmtree(out, ignore_errors=True)
        print("\n".join(report))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
