"""``local`` image search: an embedding index over a folder or a JSONL of image pages (FAISS).

Build (CLI: ``deepmmsearch index images DIR_OR_JSONL --out IDX``)::

    from deepmmsearch.tools.image.local import build_index, LocalImageSearch
    info = build_index("pages.jsonl", "runs/img_index")          # embedder "grid" by default
    search = LocalImageSearch(index="runs/img_index")
    hits = search.query(PIL.Image.open("crop.png"), k=5)            # or: await search.search(...)

Query: the image plus centred windows (``windows="center"``: scales 1, 0.9, 0.8, which strips the
padding a grounded crop carries) is embedded; each window takes ``shortlist`` neighbours; an
item's score is its best window score; optionally re-ranked by ORB/SIFT + RANSAC inliers
(``rerank``). ``windows="grid"`` adds a 3x3 grid of half-size windows, which lets a whole
cluttered image find an object inside it (off by default: the paper's point, and SimWeb's, is
that a crop beats the whole image). Hits carry the page title, url, text (snippet), the picture
path (thumbnail) and the score.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepmmsearch.registry import ConfigError, did_you_mean, missing_dependency
from deepmmsearch.tools.crop import ImageLoadError, load_image
from deepmmsearch.tools.image.embed import build_embedder
from deepmmsearch.tools.image.index_store import (
    ImagePage,
    iter_pages,
    read_items,
    read_meta,
    write_items,
    write_meta,
)
from deepmmsearch.types import SearchHit

log = logging.getLogger(__name__)

WINDOWS = {"none": (), "center": (0.9, 0.8), "grid": (0.9, 0.8)}
HNSW_ABOVE = 20_000  # auto: exact search up to this many vectors, HNSW above


def _faiss():
    try:
        import faiss
    except ImportError:
        raise missing_dependency("faiss-cpu", "image", "the local image index") from None
    return faiss


@dataclass
class IndexInfo:
    """What :func:`build_index` did."""

    path: str
    count: int
    dim: int
    embedder: dict[str, Any]
    index_type: str
    build_s: float
    skipped: list[str] = field(default_factory=list)  # "path: reason" for unreadable images


def _load(page: ImagePage) -> Image.Image | ImageLoadError:
    try:
        return load_image(page.image)
    except ImageLoadError as exc:
        return exc


def _embed_into(pages: list[ImagePage], embedder, index, batch_size: int, progress: bool,
                workers: int = 2) -> tuple[list[ImagePage], list[str]]:
    """Embed the pictures batch by batch straight into ``index`` (no full matrix in memory).
    Pictures are decoded by ``workers`` threads (PIL releases the GIL while decoding)."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    kept: list[ImagePage] = []
    skipped: list[str] = []
    bar = tqdm(total=len(pages), desc="embedding images", unit="img", disable=not progress)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for start in range(0, len(pages), batch_size):
            chunk = pages[start:start + batch_size]
            batch: list[tuple[ImagePage, Image.Image]] = []
            for page, got in zip(chunk, pool.map(_load, chunk)):
                if isinstance(got, ImageLoadError):
                    log.warning("skipping %s", got)
                    skipped.append(f"{page.image}: {got}")
                else:
                    batch.append((page, got))
            if batch:
                vectors = embedder.embed([im for _, im in batch])
                index.add(np.ascontiguousarray(vectors, dtype=np.float32))
                kept.extend(p for p, _ in batch)
            bar.update(len(chunk))
    bar.close()
    return kept, skipped


def make_faiss_index(dim: int, count: int, index_type: str = "auto", hnsw_m: int = 32):
    """An empty inner-product FAISS index for ``count`` vectors: exact ``flat`` or ``hnsw``
    (``auto``: HNSW above HNSW_ABOVE vectors). Returns (index, type)."""
    faiss = _faiss()
    if index_type == "auto":
        index_type = "hnsw" if count > HNSW_ABOVE else "flat"
    if index_type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 64
    else:
        raise ConfigError(f"index_type must be auto, flat or hnsw, got {index_type!r}"
                          f"{did_you_mean(index_type, ['auto', 'flat', 'hnsw'])}")
    return index, index_type


def build_index(source: str | Path | Iterable[Mapping[str, Any]], out: str | Path, *,
                embedder: str | dict[str, Any] | None = None, index_type: str = "auto",
                batch_size: int = 256, progress: bool = True) -> IndexInfo:
    """Embed every picture of ``source`` and write the index folder ``out`` (overwritten).

    ``source``: an image folder, a JSONL of image pages (``image``, ``title``, ``url``, ``text``,
    ``id``) or an iterable of such mappings. ``embedder``: ``"grid"`` (default, weight-free),
    ``"effnet-lite0"`` or ``{"name": "clip", "path": LOCAL_DIR}``. Unreadable images are skipped
    and listed in ``IndexInfo.skipped`` (and ``meta.json``). Returns an :class:`IndexInfo`.
    """
    t0 = time.perf_counter()
    faiss = _faiss()
    emb = build_embedder(embedder)
    pages = list(iter_pages(source))
    index, kind = make_faiss_index(emb.dim, len(pages), index_type)
    kept, skipped = _embed_into(pages, emb, index, batch_size, progress)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    # meta.json is removed first and written last: a build that dies half-way leaves a folder
    # that loads as "not an image index", never a mix of old and new files
    (folder / "meta.json").unlink(missing_ok=True)
    faiss.write_index(index, str(folder / "vectors.faiss"))
    write_items(folder, kept)
    build_s = time.perf_counter() - t0
    info = IndexInfo(str(folder), len(kept), emb.dim, emb.spec(), kind, round(build_s, 3), skipped)
    write_meta(folder, {"count": info.count, "dim": info.dim, "embedder": info.embedder,
                        "index_type": kind, "build_s": info.build_s, "skipped": skipped,
                        "source": str(source) if isinstance(source, (str, Path)) else "<records>"})
    log.info("image index %s: %d images (%d skipped) in %.1fs", folder, len(kept), len(skipped), build_s)
    return info


def query_windows(image: Image.Image, windows: str = "center") -> list[Image.Image]:
    """The query image plus centred windows (and a 3x3 grid of half-size windows for ``grid``)."""
    if windows not in WINDOWS:
        raise ConfigError(f"windows must be one of {sorted(WINDOWS)}, got {windows!r}"
                          f"{did_you_mean(windows, WINDOWS)}")
    w, h = image.size
    out = [image]
    for s in WINDOWS[windows]:
        cw, ch = max(1, round(w * s)), max(1, round(h * s))
        x, y = (w - cw) // 2, (h - ch) // 2
        out.append(image.crop((x, y, x + cw, y + ch)))
    if windows == "grid":
        cw, ch = max(1, w // 2), max(1, h // 2)
        for gy in range(3):
            for gx in range(3):
                x, y = gx * (w - cw) // 2, gy * (h - ch) // 2
                out.append(image.crop((x, y, x + cw, y + ch)))
    return out


class LocalImageSearch:
    """Search a folder built by :func:`build_index`. Registered as ``image_search: local``.

    Options: ``windows`` (none | center | grid), ``shortlist`` (neighbours per window, default
    20), ``rerank`` (none | orb | sift: local features + RANSAC over the shortlist),
    ``min_score`` (drop hits below this embedding score), ``snippet_chars``, ``threads`` (FAISS
    OpenMP threads, process-wide; 1 is fastest for single queries on a shared CPU).
    """

    name = "local"

    def __init__(self, index: str, windows: str = "center", shortlist: int = 20, rerank: str = "none",
                 min_score: float | None = None, snippet_chars: int = 400,
                 threads: int | None = 1) -> None:
        folder = Path(index)
        if threads:  # one query is tiny: OpenMP threads only contend on a busy machine
            _faiss().omp_set_num_threads(threads)
        self.meta = read_meta(folder)
        query_windows(Image.new("RGB", (4, 4)), windows)  # validates the name
        self.windows = windows
        self.shortlist = shortlist
        self.min_score = min_score
        self.snippet_chars = snippet_chars
        self.pages = read_items(folder)
        self.index = _faiss().read_index(str(folder / "vectors.faiss"))
        if self.index.ntotal != len(self.pages):
            raise ConfigError(f"{folder}: {self.index.ntotal} vectors but {len(self.pages)} items "
                              "(a broken build? rebuild the index)")
        self.embedder = build_embedder(self.meta["embedder"])
        self.reranker = None
        if rerank != "none":
            from deepmmsearch.tools.image.rerank import LocalFeatureReranker

            self.reranker = LocalFeatureReranker(rerank)

    def __len__(self) -> int:
        return len(self.pages)

    def candidates(self, image: Image.Image, n: int) -> list[tuple[int, float]]:
        """(item index, best window score) of the ``n`` best items, best first."""
        if not self.pages:
            return []
        q = self.embedder.embed(query_windows(image.convert("RGB"), self.windows))
        scores, ids = self.index.search(q, min(n, len(self.pages)))
        best: dict[int, float] = {}
        for row_s, row_i in zip(scores, ids):
            for s, i in zip(row_s, row_i):
                if i >= 0 and s > best.get(int(i), -np.inf):
                    best[int(i)] = float(s)
        return sorted(best.items(), key=lambda kv: -kv[1])[:n]

    def query(self, image: Image.Image, k: int = 5) -> list[SearchHit]:
        """Synchronous search: the top ``k`` hits for ``image``."""
        cands = self.candidates(image, max(k, self.shortlist))
        if self.min_score is not None:
            cands = [c for c in cands if c[1] >= self.min_score]
        if self.reranker is not None and cands:
            cands = self.reranker.rerank(image, cands, [self.pages[i].image for i, _ in cands])
        hits: list[SearchHit] = []
        seen: set[str] = set()
        for i, score in cands:
            page = self.pages[i]
            if page.url in seen:
                continue
            seen.add(page.url)
            snippet = page.text if len(page.text) <= self.snippet_chars else \
                page.text[: self.snippet_chars - 3].rstrip() + "..."
            hits.append(SearchHit(page.title, page.url, snippet, thumbnail=page.image,
                                  score=round(score, 4)))
            if len(hits) >= k:
                break
        return hits

    async def search(self, image: Image.Image, k: int = 5) -> list[SearchHit]:
        return await asyncio.to_thread(self.query, image, k)
