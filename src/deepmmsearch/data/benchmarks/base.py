"""What every benchmark loader shares: the load report, image resolution, table readers, sampling.

A loader reads the officially released files and returns :class:`BenchmarkData` — the
:class:`~deepmmsearch.types.Sample` records plus a :class:`LoadReport` that counts what went
wrong. Bad rows, missing or undecodable images and duplicate ids are counted and described in the
report; they never stop a load. Only a missing or unreadable *main* file raises
:class:`DatasetError`, with a message that says which file.

Common loader options (every loader takes them as keyword arguments):

- ``limit`` / ``seed``: a seeded random subset of ``limit`` samples, kept in file order (the
  paper samples 2,000 from InfoSeek and E-VQA); ``ids``: a file (one id a line) or list of ids
  that fixes the subset instead — :meth:`BenchmarkData.write_ids` writes one;
- ``image_root``: the folder holding the benchmark's images; ``image_map``: a file mapping image
  ids to paths (CSV/TSV with two columns, JSON object, JSONL rows, or a COCO-style JSON with an
  ``images`` list of ``{id, file_name}``);
- ``missing_image``: ``drop`` (default: a sample without its image is left out and counted) or
  ``keep`` (kept with ``image=None``, counted too);
- ``cache_dir``: where images that arrive as bytes or base64 are written (named by content hash,
  so loading twice writes nothing new).
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import json
import logging
import os
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepmmsearch.types import Record, Sample

log = logging.getLogger(__name__)

MAX_PROBLEMS = 50  # problem messages kept in a report (all are counted)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPEG", ".JPG", ".PNG", ".webp", ".gif", ".bmp")
_EXT_LOWER = {e.lower() for e in IMAGE_EXTENSIONS}


class DatasetError(ValueError):
    """A benchmark's main file is missing or unreadable as a whole."""


def default_cache_dir(dataset: str) -> Path:
    root = os.environ.get("DEEPMMSEARCH_CACHE") or Path.home() / ".cache" / "deepmmsearch"
    return Path(root) / "images" / dataset


@dataclass
class LoadReport(Record):
    """What a load read, kept, skipped and could not use."""

    dataset: str
    path: str
    rows: int = 0  # rows read, good or bad
    bad_rows: int = 0  # malformed rows (skipped)
    missing_images: int = 0  # image not found or not decodable
    duplicates: int = 0  # rows whose id was already seen (skipped)
    filtered: dict[str, int] = field(default_factory=dict)  # left out on purpose, by reason
    loaded: int = 0  # samples before limit / ids
    returned: int = 0  # samples after limit / ids
    limit: int | None = None
    seed: int | None = None
    problems: list[str] = field(default_factory=list)  # the first MAX_PROBLEMS messages

    def summary(self) -> str:
        parts = [f"{self.dataset}: {self.returned} samples"]
        if self.returned != self.loaded:
            parts.append(f"of {self.loaded} (limit {self.limit}, seed {self.seed})")
        parts.append(f"from {self.rows} rows")
        extra = [f"{n} {k}" for k, n in (
            ("bad rows", self.bad_rows), ("missing images", self.missing_images),
            ("duplicate ids", self.duplicates)) if n]
        extra += [f"{n} filtered ({why})" for why, n in sorted(self.filtered.items())]
        return " ".join(parts) + (f"; {', '.join(extra)}" if extra else "")


@dataclass
class BenchmarkData:
    """Samples of one benchmark and the report of how they were loaded."""

    name: str
    samples: list[Sample]
    report: LoadReport

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]

    def ids(self) -> list[str]:
        return [s.id for s in self.samples]

    def write_ids(self, path: str | Path) -> None:
        """One id a line: ship it with results; ``ids=PATH`` reloads exactly this subset."""
        Path(path).write_text("".join(f"{i}\n" for i in self.ids()), encoding="utf-8")

    def write_jsonl(self, path: str | Path) -> None:
        """The samples as JSONL (readable back with the ``jsonl`` loader)."""
        with open(path, "w", encoding="utf-8") as fh:
            fh.writelines(s.to_json() + "\n" for s in self.samples)


# ---------------------------------------------------------------------------------------------
# collecting rows


class Collector:
    """Accumulates samples and counts problems while a loader reads its files."""

    def __init__(self, dataset: str, path: str | Path, *, missing_image: str = "drop",
                 require_answers: bool = True) -> None:
        if missing_image not in ("drop", "keep"):
            raise DatasetError(f"missing_image must be 'drop' or 'keep', got {missing_image!r}")
        self.report = LoadReport(dataset, str(path))
        self.missing_image = missing_image
        self.require_answers = require_answers
        self.samples: list[Sample] = []
        self._ids: set[str] = set()

    def note(self, message: str) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(message)

    def bad(self, where: str, why: str) -> None:
        """A malformed row: counted, described, skipped."""
        self.report.bad_rows += 1
        self.note(f"{where}: {why}")

    def skip(self, reason: str) -> None:
        """A row left out on purpose (language filter, unwanted type ...)."""
        self.report.filtered[reason] = self.report.filtered.get(reason, 0) + 1

    def add(self, sample: Sample, *, where: str, image_missing: str | None = None) -> None:
        """Add a sample. ``image_missing`` says why its image is unavailable, if it is."""
        if not sample.question.strip():
            return self.bad(where, "empty question")
        if not sample.answers and self.require_answers:
            return self.bad(where, "no answer")
        if sample.id in self._ids:
            self.report.duplicates += 1
            self.note(f"{where}: duplicate id {sample.id!r}")
            return None
        if image_missing is not None:
            self.report.missing_images += 1
            self.note(f"{where}: {image_missing}")
            if self.missing_image == "drop":
                return None
            sample.image = None
        self._ids.add(sample.id)
        self.samples.append(sample)
        return None

    def finish(self, *, limit: int | None = None, seed: int = 0,
               ids: str | Sequence[str] | None = None) -> BenchmarkData:
        self.report.loaded = len(self.samples)
        chosen = select(self.samples, limit=limit, seed=seed, ids=ids, note=self.note)
        self.report.returned = len(chosen)
        self.report.limit, self.report.seed = limit, seed
        log.info("%s", self.report.summary())
        return BenchmarkData(self.report.dataset, chosen, self.report)


def select(samples: list[Sample], *, limit: int | None = None, seed: int = 0,
           ids: str | Sequence[str] | None = None, note=None) -> list[Sample]:
    """A reproducible subset: the listed ``ids`` (in their order), else ``limit`` random samples
    drawn with ``seed`` and kept in file order."""
    if ids is not None:
        wanted = read_ids(ids) if isinstance(ids, (str, Path)) else [str(i) for i in ids]
        by_id = {s.id: s for s in samples}
        missing = [i for i in wanted if i not in by_id]
        if missing and note is not None:
            note(f"{len(missing)} listed ids not found, e.g. {missing[:3]}")
        samples = [by_id[i] for i in wanted if i in by_id]
    if limit is not None:
        if limit < 0:
            raise DatasetError(f"limit must be >= 0, got {limit}")
        if limit < len(samples):
            keep = sorted(random.Random(seed).sample(range(len(samples)), limit))
            samples = [samples[i] for i in keep]
    return list(samples)


def read_ids(path: str | Path) -> list[str]:
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"ids file not found: {p}")
    return [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# reading files


def require_file(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetError(f"{what} not found: {p}")
    return p


def read_json(path: str | Path, what: str) -> Any:
    p = require_file(path, what)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{what} {p} is not valid JSON: {exc}") from None


def iter_jsonl(path: Path, col: Collector) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, row)`` for every JSON-object line; bad lines are counted on ``col``."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            col.report.rows += 1
            where = f"{path.name}:{n}"
            try:
                row = json.loads(line)
            except ValueError as exc:
                col.bad(where, f"not JSON ({exc.msg})")
                continue
            if not isinstance(row, dict):
                col.bad(where, "not a JSON object")
                continue
            yield where, row


def iter_table(path: Path, col: Collector, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of a JSONL, JSON (list of objects), CSV/TSV or parquet file, by suffix."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from iter_jsonl(path, col)
        return
    if suffix == ".json":
        data = read_json(path, what)
        rows = data.get("data", data.get("rows")) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise DatasetError(f"{what} {path}: expected a list of objects")
        for n, row in enumerate(rows):
            col.report.rows += 1
            if isinstance(row, dict):
                yield f"{path.name}[{n}]", row
            else:
                col.bad(f"{path.name}[{n}]", "not a JSON object")
        return
    if suffix in (".csv", ".tsv"):
        yield from _iter_csv(path, col, "\t" if suffix == ".tsv" else ",")
        return
    if suffix in (".parquet", ".pq"):
        yield from _iter_parquet(path, col, what)
        return
    raise DatasetError(f"{what} {path}: unsupported file type {suffix!r} "
                       "(expected .jsonl, .json, .csv, .tsv or .parquet)")


def _iter_csv(path: Path, col: Collector, delimiter: str) -> Iterator[tuple[str, dict[str, Any]]]:
    csv.field_size_limit(1 << 30)  # base64 images in TSV files are large
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        for n, row in enumerate(reader, 2):
            col.report.rows += 1
            if None in row or any(v is None for v in row.values()):
                col.bad(f"{path.name}:{n}", "wrong number of columns")
                continue
            yield f"{path.name}:{n}", row


def _iter_parquet(path: Path, col: Collector, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        from deepmmsearch.registry import missing_dependency

        raise missing_dependency("pyarrow", "train", f"reading {what} (parquet)") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
        raise DatasetError(f"{what} {path} is not a readable parquet file: {exc}") from None
    n = 0
    for batch in pf.iter_batches(batch_size=256):
        for row in batch.to_pylist():
            col.report.rows += 1
            yield f"{path.name}[{n}]", row
            n += 1


# ---------------------------------------------------------------------------------------------
# answers and fields


def str_list(value: Any) -> list[str]:
    """Gold answers as a de-duplicated list of non-empty strings, order kept."""
    if value is None:
        return []
    if isinstance(value, (str, int, float, bool)):
        value = [value]
    out: list[str] = []
    for v in value:
        if v is None or isinstance(v, (dict, list)):
            continue
        s = str(v).strip()
        if s and s not in out:
            out.append(s)
    return out


_LANGS = {"en": "en", "eng": "en", "english": "en", "zh": "zh", "cn": "zh", "zh-cn": "zh",
          "chinese": "zh", "zh_cn": "zh"}


def normalise_language(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value).strip().lower()
    return _LANGS.get(s, s or None)


# ---------------------------------------------------------------------------------------------
# images


class ImageResolver:
    """Finds an image file from its id: ``image_map`` first, then ``image_root`` with patterns.

    ``patterns`` are format strings over ``id`` and any keyword given to :meth:`resolve`
    (e.g. ``"{id}.jpg"``, ``"COCO_val2014_{id:0>12}.jpg"``); an extension-less pattern is tried
    with every common image extension.
    """

    def __init__(self, image_root: str | Path | None = None, image_map: str | Path | None = None,
                 patterns: Sequence[str] = ("{id}",), check: bool = True) -> None:
        self.root = Path(image_root).expanduser() if image_root else None
        self.map = load_image_map(image_map) if image_map else {}
        self.map_dir = Path(image_map).expanduser().parent if image_map else None
        self.patterns = tuple(patterns)
        self.check = check
        self._checked: dict[str, str | None] = {}  # many questions share one image

    def _check(self, path: str) -> str | None:
        if not self.check:
            return None
        if path not in self._checked:
            self._checked[path] = check_image(Path(path))
        return self._checked[path]

    def _candidates(self, key: str, fields: dict[str, Any]) -> Iterator[str]:
        if key in self.map:
            mapped = os.path.expanduser(self.map[key])
            if os.path.isabs(mapped):
                yield mapped
            else:
                yield os.path.join(str(self.root or self.map_dir or "."), mapped)
                if self.map_dir is not None:
                    yield os.path.join(str(self.map_dir), mapped)
        if self.root is not None:
            root = str(self.root)
            for pattern in self.patterns:
                try:
                    rel = pattern.format(id=key, **fields)
                except (KeyError, IndexError, ValueError):
                    continue
                if os.path.splitext(rel)[1].lower() in _EXT_LOWER:
                    yield os.path.join(root, rel)
                else:
                    for ext in IMAGE_EXTENSIONS:
                        yield os.path.join(root, rel + ext)

    def resolve(self, image_id: Any, **fields: Any) -> tuple[str | None, str | None]:
        """``(path, None)`` when found, else ``(None, why)``."""
        key = str(image_id)
        first = None
        for c in self._candidates(key, fields):
            first = first or c
            if os.path.isfile(c):
                bad = self._check(c)
                return (None, f"image {key!r}: {bad}") if bad else (c, None)
        if first is None:
            return None, f"image {key!r}: no image_root or image_map entry"
        return None, f"image {key!r} not found (tried {first})"

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


def count_by(samples: Iterable[Sample], attr: str) -> dict[str, int]:
    return dict(Counter(str(getattr(s, attr)) for s in samples))
