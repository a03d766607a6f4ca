"""On-disk layout of a local image index, and reading its sources.

An index is a folder::

    meta.json      format, version, embedder spec, dim, count, vector index type, build stats
    vectors.faiss  the FAISS index (inner product over L2-normalised rows)
    items.jsonl    one ImagePage per vector, in vector order; ``image`` relative to the folder

Sources: a folder of images (searched recursively; title from the file name, url ``file://``),
a JSONL of image pages (``image`` path relative to the JSONL's folder, ``title``, ``url``,
``text``, optional ``id``), or an iterable of such mappings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepmmsearch import jsontext
from deepmmsearch.registry import ConfigError
from deepmmsearch.types import Record

FORMAT = "deepmmsearch-image-index"
VERSION = 1
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


@dataclass
class ImagePage(Record):
    """One indexed picture and the page it stands for."""

    image: str  # path of the picture (absolute in memory; relative to the index folder on disk)
    title: str = ""
    url: str = ""
    text: str = ""
    id: str | None = None


def _page_from_row(row: Mapping[str, Any], base: Path, where: str) -> ImagePage:
    if not isinstance(row, Mapping) or not row.get("image"):
        raise ConfigError(f"{where}: an image page needs an 'image' path")
    path = Path(str(row["image"]))
    if not path.is_absolute():
        path = base / path
    title = str(row.get("title") or path.stem)
    url = str(row.get("url") or path.resolve().as_uri())
    return ImagePage(str(path.resolve()), title, url, str(row.get("text") or ""),
                     None if row.get("id") is None else str(row["id"]))


def iter_pages(source: str | Path | Iterable[Mapping[str, Any]]) -> Iterator[ImagePage]:
    """Image pages of a folder, a JSONL file or an iterable of mappings (see the module doc)."""
    if not isinstance(source, (str, Path)):
        for i, row in enumerate(source):
            yield _page_from_row(row, Path.cwd(), f"row {i}")
        return
    src = Path(source)
    if src.is_dir():
        for p in sorted(src.rglob("*")):
            if p.suffix.lower() in IMAGE_EXTS and p.is_file():
                yield _page_from_row({"image": str(p), "title": p.stem.replace("_", " ")}, src, str(p))
        return
    if not src.exists():
        raise ConfigError(f"image source not found: {src}")
    with open(src, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ConfigError(f"{src}:{n}: not valid JSON ({exc})") from None
            yield _page_from_row(row, src.parent, f"{src}:{n}")


def write_items(out: Path, pages: list[ImagePage]) -> None:
    with open(out / "items.jsonl", "w", encoding="utf-8") as fh:
        for p in pages:
            try:
                rel = os.path.relpath(p.image, out)
            except ValueError:  # another drive (Windows)
                rel = p.image
            row = {**p.to_dict(), "image": rel}
            fh.write(jsontext.dumps(row) + "\n")


def read_items(folder: Path) -> list[ImagePage]:
    pages = []
    with open(folder / "items.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                page = ImagePage.from_dict(json.loads(line))
                path = Path(page.image)
                page.image = str(path if path.is_absolute() else (folder / path).resolve())
                pages.append(page)
    return pages


def write_meta(out: Path, meta: dict[str, Any]) -> None:
    (out / "meta.json").write_text(jsontext.dumps({"format": FORMAT, "version": VERSION, **meta},
                                              indent=2), encoding="utf-8")


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "meta.json"
    if not path.exists():
        raise ConfigError(f"{folder} is not an image index (no meta.json); build one with "
                          "`deepmmsearch index images DIR_OR_JSONL --out DIR`")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ConfigError(f"{folder}: not a {FORMAT} (format={meta.get('format')!r})")
    if int(meta.get("version", 0)) > VERSION:
        raise ConfigError(f"{folder}: index version {meta['version']} is newer than this "
                          f"deepmmsearch understands ({VERSION}); upgrade deepmmsearch")
    return meta
