"""Local image index at scale: build time, peak memory and query latency over N generated pictures.

    nice -n 10 .venv/bin/python bench/bench_image_scale.py            # 100,000 pictures (default)
    .venv/bin/python bench/bench_image_scale.py --n 5000 --queries 100

Pictures (64 px, ``synthetic.make_picture``) are written once to a cache folder (``--cache``,
reused by later runs). The index is built with ``build_index`` (the ``grid`` embedder) in a child
process, whose peak RSS is reported. Queries are crops (10 % padding) of indexed pictures pasted
into cluttered 256-448 px scenes; the exact (``flat``) index is the baseline for the HNSW index
(``auto`` picks HNSW above 20k vectors): latency ratio and agreement of the top hit.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def _write_pictures(args: tuple[str, int, int]) -> int:
    from deepmmsearch.tools.image.synthetic import make_picture

    folder, start, stop = args
    for i in range(start, stop):
        path = Path(folder) / f"{i // 1000:03d}" / f"p{i:06d}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            make_picture(i, 64).save(path, compress_level=1)
    return stop - start


def ensure_pictures(cache: Path, n: int, jobs: int) -> Path:
    pages = cache / f"pages_{n}.jsonl"
    if pages.exists():
        return pages
    cache.mkdir(parents=True, exist_ok=True)
    chunks = [(str(cache), s, min(n, s + 1000)) for s in range(0, n, 1000)]
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(jobs) as pool:
        done = 0
        for k in pool.imap_unordered(_write_pictures, chunks):
            done += k
            print(f"\r  pictures {done}/{n}", end="", file=sys.stderr, flush=True)
    print(f"\n  generated {n} pictures in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    with open(pages, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"image": f"{i // 1000:03d}/p{i:06d}.png", "title": f"Picture {i}",
                                 "url": f"https://bench.test/{i}"}) + "\n" for i in range(n))
    return pages


def _build(pages: str, out: str, index_type: str, q) -> None:
    from deepmmsearch.tools.image.local import build_index

    t0 = time.perf_counter()
    info = build_index(pages, out, index_type=index_type, progress=False)
    q.put({"build_s": time.perf_counter() - t0, "count": info.count, "index_type": info.index_type,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def build_in_child(pages: Path, out: Path, index_type: str) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_build, args=(str(pages), str(out), index_type, q))
    p.start()
    res = q.get()
    p.join()
    return res


def make_queries(n_pictures: int, n: int, seed: int = 0) -> list:
    from deepmmsearch.tools.crop import crop_box
    from deepmmsearch.tools.image.synthetic import make_picture, make_scene

    rng = random.Random(seed)
    out = []
    for s in range(n):
        ids = rng.sample(range(n_pictures), 3)
        scene, boxes = make_scene([make_picture(i, 64) for i in ids],
                                  size=(rng.randint(256, 448), rng.randint(256, 448)), seed=s)
        out.append((ids[0], crop_box(scene, boxes[0])[0]))
    return out


def time_queries(index: Path, queries: list) -> tuple[list[float], list[str], float]:
    from deepmmsearch.tools.image.local import LocalImageSearch

    search = LocalImageSearch(index=str(index))
    for _, q in queries[:5]:
        search.query(q, 5)  # warm-up
    times, tops, correct = [], [], 0
    for target, q in queries:
        t0 = time.perf_counter()
        hits = search.query(q, 5)
        times.append((time.perf_counter() - t0) * 1000)
        tops.append(hits[0].url)
        correct += hits[0].url == f"https://bench.test/{target}"
    return times, tops, correct / len(queries)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", default="/tmp/deepmmsearch-bench-images")
    ap.add_argument("--out", default="/tmp/deepmmsearch-bench-image-index")
    args = ap.parse_args(argv if argv is not None else [])
    cache = Path(args.cache) / str(args.n)
    pages = ensure_pictures(cache, args.n, args.jobs)
    queries = make_queries(args.n, args.queries)
    rows = {}
    for kind in ("flat", "auto"):
        out = Path(args.out) / f"{args.n}_{kind}"
        built = build_in_child(pages, out, kind)
        times, tops, p1 = time_queries(out, queries)
        rows[kind] = {**built, "p50_ms": statistics.median(times),
                      "p95_ms": sorted(times)[int(0.95 * (len(times) - 1))], "p_at_1": p1, "tops": tops}
        print(f"{kind:>5} ({built['index_type']}): n={built['count']} build {built['build_s']:.1f}s "
              f"({built['build_s'] / built['count'] * 1000:.2f} ms/img), peak RSS "
              f"{built['peak_rss_mb']:.0f} MB; query p50 {rows[kind]['p50_ms']:.2f} ms "
              f"p95 {rows[kind]['p95_ms']:.2f} ms; crop P@1 {p1:.3f}", flush=True)
    flat, auto = rows["flat"], rows["auto"]
    agree = sum(a == b for a, b in zip(flat["tops"], auto["tops"])) / len(queries)
    print(f"ratio {auto['index_type']}/flat: query p50 x{auto['p50_ms'] / flat['p50_ms']:.2f}, "
          f"build x{auto['build_s'] / flat['build_s']:.2f}; top-1 agreement {agree:.3f}")
    ok = auto["p50_ms"] <= 20.0
    print(f"median query within 20 ms ({auto['index_type']}): {'yes' if ok else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
