"""``bm25``: a local BM25 index over a JSONL corpus, persisted on disk.

Corpus rows: ``{"id", "title", "text", "url", "date"?}`` (``contents`` — a title line then the
text, as in Search-R1 corpora — is accepted in place of ``title``/``text``). Build and query::

    deepmmsearch index text corpus.jsonl --out runs/text_index            # tantivy (default)
    deepmmsearch index text corpus.jsonl --out runs/text_index --engine bm25s
    deepmmsearch search text "great egret wingspan" --index runs/text_index -k 5

or from Python: ``build_index(corpus, out_dir)`` then ``BM25TextSearch(out_dir)``. Engines:
``tantivy`` (default: bounded memory, stored documents, fast build) and ``bm25s`` (a sparse score
matrix held in RAM; documents kept in a line-offset store). Both drop English stop words; tantivy
also stems. Queries are reduced to their words before parsing, so an LLM query with odd syntax
(quotes, colons, brackets, ``AND``/``OR``) never raises. A snippet is the passage of the document
that holds the most query words, trimmed to ``snippet_chars``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepmmsearch import jsontext
from deepmmsearch.registry import ConfigError, missing_dependency
from deepmmsearch.tools.base import ToolError
from deepmmsearch.tools.text.snippets import best_passage, query_words, s_stem, term_variants
from deepmmsearch.types import Record, SearchHit

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
META_FILE = "deepmmsearch_index.json"
ENGINES = ("tantivy", "bm25s")
ANALYZER = "dmms_en"  # tantivy analyzer: simple tokens, lowercase, English stop words, stemmer


class IndexLoadError(ConfigError):
    """A text index is missing, incomplete or unreadable; or a corpus cannot be indexed."""


@dataclass
class IndexInfo(Record):
    """What ``build_index`` wrote (also stored as ``deepmmsearch_index.json`` in the index)."""

    path: str
    engine: str
    n_docs: int
    build_s: float
    size_bytes: int
    corpus: str = ""
    format_version: int = FORMAT_VERSION
    created: float = 0.0


# -- corpus --------------------------------------------------------------------------------


def _row_fields(row: Any, where: str) -> tuple[str, str, str, str, str]:
    if not isinstance(row, dict):
        raise IndexLoadError(f"{where}: expected a JSON object, got {type(row).__name__}")
    title, text = row.get("title"), row.get("text")
    if text is None and isinstance(row.get("contents"), str):  # Search-R1 style
        head, _, rest = row["contents"].partition("\n")
        title, text = (title or head.strip().strip('"')), rest
    if not isinstance(text, str):
        raise IndexLoadError(f"{where}: a row needs a string 'text' (or 'contents')")
    doc_id = row.get("id", row.get("_id"))
    return (str(doc_id) if doc_id is not None else "", str(title or ""), text,
            str(row.get("url") or ""), str(row.get("date") or ""))


def read_corpus(path: str | Path, show_progress: bool = False) -> Iterator[tuple[str, ...]]:
    """Yield ``(id, title, text, url, date)`` per corpus row; a bad row is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise IndexLoadError(f"corpus not found: {path}")
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"indexing {path.name}")
    try:
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if bar is not None:
                    bar.update(len(raw))
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except ValueError as exc:
                    raise IndexLoadError(f"{path}:{lineno}: invalid JSON ({exc})") from None
                fields = _row_fields(row, f"{path}:{lineno}")
                yield (fields[0] or str(lineno - 1), *fields[1:])
    finally:
        if bar is not None:
            bar.close()


# -- building --------------------------------------------------------------------------------


class _IdCheck:
    """Duplicate corpus ids, found with 8 bytes per document (a hash each, sorted at the end),
    so a 20-million-passage corpus costs ~160 MB here, not a set of strings."""

    def __init__(self) -> None:
        from array import array

        self.hashes = array("q")

    @staticmethod
    def _hash(doc_id: str) -> int:
        return int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8", "surrogatepass"),
                                              digest_size=8).digest(), "little", signed=True)

    def watch(self, rows: Iterator[tuple[str, ...]]) -> Iterator[tuple[str, ...]]:
        for row in rows:
            self.hashes.append(self._hash(row[0]))
            yield row

    def check(self, corpus: str | Path) -> None:
        import numpy as np

        h = np.sort(np.frombuffer(self.hashes, dtype=np.int64))
        if not len(h) or not (h[1:] == h[:-1]).any():
            return
        dup = set(h[1:][h[1:] == h[:-1]].tolist())
        first: dict[str, int] = {}
        for lineno, row in enumerate(read_corpus(corpus), 1):
            if self._hash(row[0]) in dup:
                if row[0] in first:
                    raise IndexLoadError(f"{corpus}: duplicate document id {row[0]!r} (rows "
                                         f"{first[row[0]]} and {lineno}); ids must be unique")
                first[row[0]] = lineno


def _tantivy():
    try:
        import tantivy
    except ImportError:
        raise missing_dependency("tantivy", "search", "the tantivy text index") from None
    return tantivy


def _analyzer(tantivy):
    f = tantivy.Filter
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(f.remove_long(40))
            .filter(f.lowercase()).filter(f.stopword("english")).filter(f.stemmer("english"))
            .build())


def _build_tantivy(rows: Iterator[tuple[str, ...]], out: Path, heap_mb: int, threads: int) -> int:
    tantivy = _tantivy()
    sb = tantivy.SchemaBuilder()
    for name in ("id", "url", "date"):
        sb.add_text_field(name, stored=True, tokenizer_name="raw", index_option="basic")
    for name in ("title", "text"):
        sb.add_text_field(name, stored=True, tokenizer_name=ANALYZER, index_option="freq")
    index = tantivy.Index(sb.build(), path=str(out))
    index.register_tokenizer(ANALYZER, _analyzer(tantivy))
    writer = index.writer(heap_mb * 1_000_000, threads)
    n = 0
    try:
        for doc_id, title, text, url, date in rows:
            doc = tantivy.Document()
            doc.add_text("id", doc_id)
            doc.add_text("title", title)
            doc.add_text("text", text)
            doc.add_text("url", url)
            doc.add_text("date", date)
            writer.add_document(doc)
            n += 1
        writer.commit()
    except BaseException:
        writer.rollback()  # stop the writer's threads before the folder is removed
        raise
    finally:
        writer.wait_merging_threads()
    return n


def _build_bm25s(rows: Iterator[tuple[str, ...]], out: Path) -> int:
    try:
        import bm25s
    except ImportError:
        raise missing_dependency("bm25s", "search", "the bm25s text index") from None
    import numpy as np

    texts: list[str] = []
    offsets = [0]
    with (out / "docs.jsonl").open("wb") as fh:
        for doc_id, title, text, url, date in rows:
            line = jsontext.dumps([doc_id, title, text, url, date]).encode() + b"\n"
            fh.write(line)
            offsets.append(offsets[-1] + len(line))
            texts.append(f"{title}\n{title}\n{text}")  # the title counts twice (tantivy: boost 2)
    np.save(out / "offsets.npy", np.asarray(offsets, dtype=np.int64))
    if texts:
        tokens = bm25s.tokenize(texts, stopwords="english", stemmer=lambda ws: [s_stem(w) for w in ws],
                                 show_progress=False)
        del texts
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        retriever.save(str(out / "bm25s"), show_progress=False)
    return len(offsets) - 1


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build_index(corpus_jsonl: str | Path, out_dir: str | Path, engine: str = "tantivy",
                show_progress: bool = True, *, overwrite: bool = False, heap_mb: int = 512,
                threads: int = 2, allow_empty: bool = True) -> IndexInfo:
    """Index a JSONL corpus into ``out_dir``; returns an :class:`IndexInfo`.

    The index is written to a temporary folder beside ``out_dir`` and moved into place when
    complete, so a failed build (bad row, full disk) leaves nothing half-written. An existing
    ``out_dir`` is replaced only with ``overwrite=True``. Duplicate document ids are an error;
    so is an empty corpus when ``allow_empty`` is False (the CLI's choice).
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown text index engine {engine!r}; choose one of {', '.join(ENGINES)}")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise IndexLoadError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it")
        if out.is_dir() and not (out / META_FILE).exists():
            raise IndexLoadError(f"{out} is not a deepmmsearch index; refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    t0 = time.perf_counter()
    try:
        ids = _IdCheck()
        rows = ids.watch(read_corpus(corpus_jsonl, show_progress))
        if engine == "tantivy":
            n = _build_tantivy(rows, tmp, heap_mb, threads)
        else:
            n = _build_bm25s(rows, tmp)
        if n == 0 and not allow_empty:
            raise IndexLoadError(f"{corpus_jsonl}: the corpus has no documents (one JSON object "
                                 "per line: id, title, text, url)")
        ids.check(corpus_jsonl)
        info = IndexInfo(path=str(out), engine=engine, n_docs=n, build_s=time.perf_counter() - t0,
                         size_bytes=_dir_size(tmp), corpus=str(corpus_jsonl), created=time.time())
        (tmp / META_FILE).write_text(jsontext.dumps(info.to_dict(), indent=2), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("indexed %d documents with %s in %.1fs -> %s", n, engine, info.build_s, out)
    return info


def read_info(index: str | Path) -> IndexInfo:
    """Read an index's metadata; a missing or foreign folder is an :class:`IndexLoadError`."""
    path = Path(index)
    meta = path / META_FILE
    if not path.is_dir():
        raise IndexLoadError(f"text index not found: {path} (build one with "
                             "`deepmmsearch index text CORPUS.jsonl --out DIR`)")
    if not meta.is_file():
        raise IndexLoadError(f"{path} is not a deepmmsearch text index (no {META_FILE})")
    try:
        info = IndexInfo.from_dict(json.loads(meta.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise IndexLoadError(f"{meta}: unreadable index metadata ({exc})") from None
    if info.format_version != FORMAT_VERSION or info.engine not in ENGINES:
        raise IndexLoadError(f"{path}: unsupported index (engine {info.engine!r}, format "
                             f"{info.format_version}); rebuild it with this version")
    return info


# -- searching ---------------------------------------------------------------------------------


def _fatal(exc: BaseException) -> bool:
    return isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError))


class _TantivyEngine:
    def __init__(self, path: Path) -> None:
        tantivy = _tantivy()
        try:
            self.index = tantivy.Index.open(str(path))
            self.index.register_tokenizer(ANALYZER, _analyzer(tantivy))
            self.searcher = self.index.searcher()
            self.n_docs = self.searcher.num_docs
            self.analyzer = _analyzer(tantivy)
            self._query, self._occur = tantivy.Query, tantivy.Occur
            self.schema = self.index.schema
            self.search(["index", "probe"], 1)  # touch the postings: corruption shows now
        except BaseException as exc:  # tantivy reports some corruption as a Rust panic
            if _fatal(exc):
                raise
            raise IndexLoadError(f"cannot open tantivy index {path}: {exc}") from None

    def query(self, words: list[str]):
        """A flat OR of term queries (title boosted 2×) over the analysed words, or None.

        Built from terms, not parsed, so no input can be a syntax error; the flat shape lets
        tantivy prune with block-max WAND (measured 1.6× faster than the parser's nested query).
        """
        terms = dict.fromkeys(self.analyzer.analyze(" ".join(words)))
        if not terms:
            return None
        q, should = self._query, self._occur.Should
        clauses = []
        for term in terms:
            clauses.append((should, q.term_query(self.schema, "text", term)))
            clauses.append((should, q.boost_query(q.term_query(self.schema, "title", term), 2.0)))
        return q.boolean_query(clauses)

    def search(self, words: list[str], k: int) -> list[tuple[float, tuple[str, ...]]]:
        query = self.query(words)
        if query is None:
            return []
        out = []
        for score, addr in self.searcher.search(query, k, count=False).hits:
            doc = self.searcher.doc(addr)
            out.append((score, tuple(doc.get_first(f) or "" for f in
                                     ("id", "title", "text", "url", "date"))))
        return out


class _Bm25sEngine:
    def __init__(self, path: Path) -> None:
        try:
            import bm25s
        except ImportError:
            raise missing_dependency("bm25s", "search", "the bm25s text index") from None
        import numpy as np

        try:
            self.offsets = np.load(path / "offsets.npy", mmap_mode="r")
            self.n_docs = len(self.offsets) - 1
            self.docs = (path / "docs.jsonl").open("rb")
            self.retriever = (bm25s.BM25.load(str(path / "bm25s"), mmap=True, show_progress=False)
                              if self.n_docs else None)
        except (OSError, ValueError) as exc:
            raise IndexLoadError(f"cannot open bm25s index {path}: {exc}") from None
        import bm25s.stopwords as sw

        self.stopwords = frozenset(sw.STOPWORDS_EN)
        self._np = np

    def doc(self, i: int) -> tuple[str, ...]:
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        return tuple(json.loads(os.pread(self.docs.fileno(), end - start, start)))

    def search(self, words: list[str], k: int) -> list[tuple[float, tuple[str, ...]]]:
        words = [s_stem(w) for w in words if len(w) > 1 and w not in self.stopwords]
        if not words or self.retriever is None:
            return []
        # Score, then select among the matching documents only: bm25s's own top-k runs
        # np.argpartition over all n_docs scores, mostly zeros, and took ~9x longer at 1M docs.
        np = self._np
        scores = self.retriever.get_scores(words)
        top = np.flatnonzero(scores)
        if len(top) > k:
            top = top[np.argpartition(-scores[top], k - 1)[:k]]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(float(scores[i]), self.doc(int(i))) for i in top]


class BM25TextSearch:
    """TextSearch over an index made by :func:`build_index` (engine read from the index).

    ``snippet_chars`` bounds the snippet. A query runs on the event loop by default (well under a
    millisecond on a 1M-document tantivy index; the hop to a worker thread cost more than the
    query itself in ``bench/bench_text_index.py``); ``threaded=True`` runs it in a worker thread,
    for indexes whose queries take long enough that other episodes should not wait. A missing or corrupt index raises
    :class:`IndexLoadError` here, when the backend is built, not at the first query.
    """

    name = "bm25"

    def __init__(self, index: str, snippet_chars: int = 300, threaded: bool = False) -> None:
        self.info = read_info(index)
        path = Path(index)
        self.engine = _TantivyEngine(path) if self.info.engine == "tantivy" else _Bm25sEngine(path)
        self.snippet_chars = snippet_chars
        self.threaded = threaded

    def search_sync(self, query: str, k: int = 5) -> list[SearchHit]:
        words = query_words(query)
        if not words or k <= 0:
            return []
        terms = term_variants(words)
        return [
            SearchHit(title=title, url=url or f"doc:{doc_id}",
                      snippet=best_passage(text, terms, self.snippet_chars, title),
                      score=round(score, 4), date=date or None)
            for score, (doc_id, title, text, url, date) in self._engine_search(words, k)
        ]

    def _engine_search(self, words: list[str], k: int) -> list[tuple[float, tuple[str, ...]]]:
        try:
            return self.engine.search(words, k)
        except BaseException as exc:  # a Rust panic is a BaseException: keep it an observation
            if _fatal(exc):
                raise
            raise ToolError(f"bm25: the index {self.info.path} failed on a query: {exc}") from None

    async def search(self, query: str, k: int = 5) -> list[SearchHit]:
        if self.threaded:
            return await asyncio.to_thread(self.search_sync, query, k)
        return self.search_sync(query, k)
