"""Finding a benchmark's images on disk, and writing images that arrive as bytes.

:class:`ImageResolver` looks an image id up in ``image_map`` files first, then tries the loader's
filename patterns under ``image_root``, and finally (``search_subfolders``) looks for a file named
``{id}.*`` anywhere below ``image_root``: released snapshots spread images over sub-folders (the
OVEN snapshot's shards, iNaturalist's category folders) that no fixed pattern describes. The
recursive index is built once, on the first id that the map and the patterns miss.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from deepmmsearch.data.benchmarks.errors import DatasetError, read_json, require_file

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPEG", ".JPG", ".PNG", ".webp", ".gif", ".bmp")
_EXT_LOWER = {e.lower() for e in IMAGE_EXTENSIONS}


def _as_list(value: str | Path | Sequence[str | Path] | None) -> list[Path]:
    if value is None or value == "":
        return []
    if isinstance(value, (str, Path)):
        return [Path(value).expanduser()]
    return [Path(v).expanduser() for v in value]


class ImageResolver:
    """Finds an image file from its id: ``image_map`` first, then ``image_root`` with patterns,
    then (``search_subfolders``) any ``{id}.<image extension>`` below ``image_root``.

    ``patterns`` are format strings over ``id`` and any keyword given to :meth:`resolve`
    (e.g. ``"{id}.jpg"``, ``"COCO_val2014_{id:0>12}.jpg"``); an extension-less pattern is tried
    with every common image extension. ``image_map`` may be one file or a list of files (e.g.
    iNaturalist's ``train.json`` and ``val.json``); a mapped relative path is looked up under
    ``map_root``, then ``image_root``, then the map file's folder.
    """

    def __init__(self, image_root: str | Path | None = None,
                 image_map: str | Path | Sequence[str | Path] | None = None,
                 patterns: Sequence[str] = ("{id}",), check: bool = True, *,
                 search_subfolders: bool = False, map_root: str | Path | None = None) -> None:
        self.root = Path(image_root).expanduser() if image_root else None
        self.map: dict[str, str] = {}
        self.map_dirs: list[Path] = []
        for m in _as_list(image_map):
            self.map.update(load_image_map(m))
            self.map_dirs.append(m.parent)
        self.map_root = Path(map_root).expanduser() if map_root else None
        self.patterns = tuple(patterns)
        self.check = check
        self.search_subfolders = search_subfolders
        self._index: dict[str, str] | None = None
        self._checked: dict[str, str | None] = {}  # many questions share one image

    def _check(self, path: str) -> str | None:
        if not self.check:
            return None
        if path not in self._checked:
            self._checked[path] = check_image(Path(path))
        return self._checked[path]

    def _mapped(self, key: str) -> Iterator[str]:
        mapped = os.path.expanduser(self.map[key])
        if os.path.isabs(mapped):
            yield mapped
            return
        for base in (self.map_root, self.root, *self.map_dirs):
            if base is not None:
                yield os.path.join(str(base), mapped)

    def _patterned(self, key: str, fields: dict[str, Any]) -> Iterator[str]:
        if self.root is None:
            return
        for pattern in self.patterns:
            try:
                rel = pattern.format(id=key, **fields)
            except (KeyError, IndexError, ValueError):
                continue
            if os.path.splitext(rel)[1].lower() in _EXT_LOWER:
                yield os.path.join(str(self.root), rel)
            else:
                for ext in IMAGE_EXTENSIONS:
                    yield os.path.join(str(self.root), rel + ext)

    def _indexed(self, key: str) -> str | None:
        if not self.search_subfolders or self.root is None or not self.root.is_dir():
            return None
        if self._index is None:
            self._index = {}
            for dirpath, _dirs, files in os.walk(self.root):
                for f in files:
                    stem, ext = os.path.splitext(f)
                    if ext.lower() in _EXT_LOWER:
                        self._index.setdefault(stem, os.path.join(dirpath, f))
        return self._index.get(key)

    def resolve(self, image_id: Any, **fields: Any) -> tuple[str | None, str | None]:
        """``(path, None)`` when found, else ``(None, why)``; ``why`` names what was tried."""
        key = str(image_id)
        tried: list[str] = []
        for c in (*(self._mapped(key) if key in self.map else ()), *self._patterned(key, fields)):
            if not tried or os.path.splitext(c)[0] != os.path.splitext(tried[-1])[0]:
                tried.append(c)
            if os.path.isfile(c):
                return self._found(key, c)
        found = self._indexed(key)
        if found is not None:
            return self._found(key, found)
        if not tried and not self.search_subfolders:
            return None, f"image {key!r}: no image_root or image_map entry"
        shown = ", ".join(tried[:3]) + (f" and {len(tried) - 3} more" if len(tried) > 3 else "")
        where = f"tried {shown}" if tried else "no image_map entry"
        if self.search_subfolders and self.root is not None:
            where += f"; no file {key}.* anywhere under {self.root}"
        return None, f"image {key!r} not found ({where})"

    def _found(self, key: str, path: str) -> tuple[str | None, str | None]:
        bad = self._check(path)
        return (None, f"image {key!r}: {bad}") if bad else (path, None)

    def resolve_path(self, path: str) -> tuple[str | None, str | None]:
        """A path given in the data itself, relative to ``image_root`` when not absolute."""
        p = Path(path).expanduser()
        if not p.is_absolute() and self.root is not None:
            p = self.root / p
        if not p.is_file():
            return None, f"image file not found: {p}"
        bad = self._check(str(p))
        return (None, f"{p}: {bad}") if bad else (str(p), None)


def check_image(path: Path) -> str | None:
    """None when PIL can read the image header, else why not (cheap: no pixel decoding)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.size  # noqa: B018 - header parsed
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return f"not a readable image ({type(exc).__name__})"
    return None


def load_image_map(path: str | Path) -> dict[str, str]:
    """Image id → path from CSV/TSV (two columns, header optional), JSON or JSONL."""
    p = require_file(path, "image map")
    if p.suffix.lower() in (".csv", ".tsv"):
        out = {}
        with open(p, encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh, delimiter="\t" if p.suffix.lower() == ".tsv" else ","):
                if len(row) >= 2 and row[0].strip() and not (
                        row[0].strip().lower() in ("id", "image_id") and not out):
                    out[row[0].strip()] = row[1].strip()
        return out
    if p.suffix.lower() == ".jsonl":
        rows = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()
                if line.strip()]
        return dict(_pair(r) for r in rows if _pair(r))
    data = read_json(p, "image map")
    if isinstance(data, dict) and isinstance(data.get("images"), list):  # COCO / iNaturalist
        return {str(im["id"]): str(im["file_name"]) for im in data["images"]
                if isinstance(im, dict) and "id" in im and "file_name" in im}
    if isinstance(data, dict):
        return {str(k): str(v) for k, v in data.items()}
    if isinstance(data, list):
        return dict(_pair(r) for r in data if _pair(r))
    raise DatasetError(f"image map {p}: unrecognised layout")


def _pair(row: Any) -> tuple[str, str] | None:
    if not isinstance(row, dict):
        return None
    key = next((row[k] for k in ("image_id", "id") if k in row), None)
    val = next((row[k] for k in ("image_path", "path", "file_name") if k in row), None)
    return (str(key), str(val)) if key is not None and val is not None else None


class ImageStore:
    """Writes images that arrive as bytes or base64 to ``cache_dir``, named by content hash."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.dir = Path(cache_dir).expanduser()
        self.written = 0

    def save(self, data: Any) -> tuple[str | None, str | None]:
        """``(path, None)`` or ``(None, why)``. Accepts bytes, base64 text or ``{bytes, path}``."""
        raw = self._bytes(data)
        if raw is None:
            return None, "no image bytes"
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(raw)) as im:
                fmt = (im.format or "PNG").lower()
        except (UnidentifiedImageError, OSError, ValueError):
            return None, "image bytes are not a readable image"
        ext = {"jpeg": "jpg", "mpo": "jpg"}.get(fmt, fmt)
        digest = hashlib.sha256(raw).hexdigest()[:24]
        path = self.dir / digest[:2] / f"{digest}.{ext}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(raw)
            os.replace(tmp, path)
            self.written += 1
        return str(path), None

    @staticmethod
    def _bytes(data: Any) -> bytes | None:
        if isinstance(data, dict):
            data = data.get("bytes")
        if isinstance(data, (bytes, bytearray, memoryview)):
            return bytes(data) or None
        if isinstance(data, str) and data.strip():
            s = data.strip()
            if s.startswith("data:") and "," in s:
                s = s.split(",", 1)[1]
            try:
                return base64.b64decode(s, validate=False) or None
            except (binascii.Error, ValueError):
                return None
        return None
