"""What every benchmark loader shares: the load report, image resolution, table readers, sampling.

A loader reads the officially released files and returns :class:`BenchmarkData` — the
:class:`~deepmmsearch.types.Sample` records plus a :class:`LoadReport` that counts what went
wrong. Bad rows, missing or undecodable images and duplicate ids are counted and described in the
report; they never stop a load. Only a missing or unreadable *main* file raises
:class:`DatasetError`, with a message that says which file.

Every loader is a row reader wrapped by :func:`benchmark_loader`, which gives all of them one
signature and one collector loop. Options every loader takes (keyword arguments):

- ``limit`` / ``seed``: a seeded random subset of ``limit`` samples, kept in file order (the
  paper samples 2,000 from InfoSeek and E-VQA); ``ids``: a file (one id a line) or list of ids
  that fixes the subset instead — :meth:`BenchmarkData.write_ids` writes one;
- ``missing_image``: ``drop`` (default: a sample without its image is left out and counted) or
  ``keep`` (kept with ``image=None``, counted too).

Options most loaders take: ``image_root``, the folder holding the benchmark's images;
``image_map``, a file (or list of files) mapping image ids to paths (CSV/TSV with two columns, JSON
object, JSONL rows, or a COCO-style JSON with an ``images`` list of ``{id, file_name}``);
``check_images`` (default true: PIL reads each image header once);
``cache_dir``: where images that arrive as bytes or base64 are written (named by content hash,
  so loading twice writes nothing new).
"""

from __future__ import annotations

import csv
import functools
import inspect
import json
import logging
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepmmsearch.data.benchmarks.errors import DatasetError, read_json, require_file
from deepmmsearch.data.benchmarks.images import (  # noqa: F401 - re-exported for loaders
    IMAGE_EXTENSIONS,
    ImageResolver,
    ImageStore,
    check_image,
    load_image_map,
)
from deepmmsearch.types import Record, Sample

log = logging.getLogger(__name__)

MAX_PROBLEMS = 50  # problem messages kept in a report (all are counted)
MISSING_IMAGE = ("drop", "keep")
_PLURAL = {"bad row": "bad rows", "missing image": "missing images", "duplicate id": "duplicate ids"}


def default_cache_dir(dataset: str) -> Path:
    root = os.environ.get("DEEPMMSEARCH_CACHE") or Path.home() / ".cache" / "deepmmsearch"
    return Path(root) / "images" / dataset


@dataclass
class LoadReport(Record):
    """What a load read, kept, skipped and could not use.

    ``skipped`` counts every row (or, for E-VQA with ``all_images``, every sample) that was not
    yielded, by reason: ``bad row: <kind>``, ``missing image: <kind>``, ``duplicate id`` and
    ``filtered: <reason>``. With ``missing_image="keep"`` a sample without its image is yielded
    (with ``image=None``) and only counted in ``missing_images``.
    """

    dataset: str
    path: str
    rows: int = 0  # rows read, good or bad
    bad_rows: int = 0  # malformed rows (skipped)
    missing_images: int = 0  # image not found or not decodable (skipped unless kept)
    duplicates: int = 0  # rows whose id was already seen (skipped)
    filtered: dict[str, int] = field(default_factory=dict)  # left out on purpose, by reason
    skipped: dict[str, int] = field(default_factory=dict)  # every row not yielded, by reason
    loaded: int = 0  # samples before limit / ids
    returned: int = 0  # samples after limit / ids
    limit: int | None = None
    seed: int | None = None
    notes: list[str] = field(default_factory=list)  # file-level remarks (version chosen ...)
    problems: list[str] = field(default_factory=list)  # the first MAX_PROBLEMS row messages

    @property
    def not_yielded(self) -> int:
        return sum(self.skipped.values())

    def reasons(self) -> str:
        """``skipped`` grouped by row kind: "2 bad rows (1 not JSON, 1 no answer), 1 duplicate id"."""
        groups: dict[str, dict[str, int]] = {}
        for key, n in sorted(self.skipped.items()):
            group, _, why = key.partition(": ")
            groups.setdefault(group, {})[why] = n
        parts = []
        for group, whys in groups.items():
            total = sum(whys.values())
            noun = _PLURAL.get(group, group) if total != 1 else group
            detail = ", ".join(f"{n} {w}" for w, n in whys.items() if w)
            parts.append(f"{total} {noun}" + (f" ({detail})" if detail else ""))
        return ", ".join(parts)

    def summary(self) -> str:
        parts = [f"{self.dataset}: {self.returned} samples"]
        if self.returned != self.loaded:
            parts.append(f"of {self.loaded} (limit {self.limit}, seed {self.seed})")
        parts.append(f"from {self.rows} rows")
        text = " ".join(parts)
        if self.skipped:
            text += f"; {self.not_yielded} not yielded: {self.reasons()}"
        kept = self.missing_images - sum(n for k, n in self.skipped.items()
                                         if k.startswith("missing image"))
        if kept:
            text += f"; {kept} kept without their image"
        return text + "".join(f"; {n}" for n in self.notes)


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


def image_problem_kind(message: str) -> str:
    """A short kind for an image problem message (the report's per-reason key)."""
    m = message.lower()
    if "not a readable image" in m or "not readable" in m:
        return "unreadable"
    if "no image" in m:
        return "none given"
    return "not found"


class Collector:
    """Accumulates samples and counts problems while a loader reads its files."""

    def __init__(self, dataset: str, path: str | Path, *, missing_image: str = "drop",
                 require_answers: bool = True) -> None:
        if missing_image not in MISSING_IMAGE:
            raise DatasetError(f"missing_image must be 'drop' or 'keep', got {missing_image!r}")
        self.report = LoadReport(dataset, str(path))
        self.missing_image = missing_image
        self.require_answers = require_answers
        self.samples: list[Sample] = []
        self._ids: set[str] = set()

    def note(self, message: str) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(message)

    def _count(self, reason: str) -> None:
        self.report.skipped[reason] = self.report.skipped.get(reason, 0) + 1

    def bad(self, where: str, kind: str, detail: str = "") -> None:
        """A malformed row: counted under ``kind`` (a short, fixed phrase), described, skipped."""
        self.report.bad_rows += 1
        self._count(f"bad row: {kind}")
        self.note(f"{where}: {kind}" + (f" ({detail})" if detail else ""))

    def skip(self, reason: str) -> None:
        """A row left out on purpose (language filter, unwanted type ...)."""
        self.report.filtered[reason] = self.report.filtered.get(reason, 0) + 1
        self._count(f"filtered: {reason}")

    def add(self, sample: Sample, *, where: str, image_missing: str | None = None) -> None:
        """Add a sample. ``image_missing`` says why its image is unavailable, if it is."""
        if not sample.question.strip():
            return self.bad(where, "empty question")
        if not sample.answers and self.require_answers:
            return self.bad(where, "no answer")
        if sample.id in self._ids:
            self.report.duplicates += 1
            self._count("duplicate id")
            self.note(f"{where}: duplicate id {sample.id!r}")
            return None
        if image_missing is not None:
            self.report.missing_images += 1
            self.note(f"{where}: {image_missing}")
            if self.missing_image == "drop":
                self._count(f"missing image: {image_problem_kind(image_missing)}")
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


# ---------------------------------------------------------------------------------------------
# the one loader signature

Rows = Iterator[tuple[str, Sample, "str | None"]]  # (where, sample, why its image is missing)
_COMMON = (
    inspect.Parameter("limit", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="int | None"),
    inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY, default=0, annotation="int"),
    inspect.Parameter("ids", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation="str | list[str] | None"),
    inspect.Parameter("missing_image", inspect.Parameter.KEYWORD_ONLY, default="drop",
                      annotation="str"),
)
COMMON_OPTIONS = tuple(p.name for p in _COMMON)


def benchmark_loader(dataset: str, what: str) -> Callable[[Callable[..., Rows]], Callable[..., BenchmarkData]]:
    """Turn a row reader into a registered loader with the one shared signature.

    The reader is ``rows(path: Path, col: Collector, *, <its own options>)`` and yields
    ``(where, sample, image_missing)``; it counts its bad rows and filters on ``col``. The
    decorator checks the main file, runs the collector loop and the ``limit`` / ``seed`` /
    ``ids`` selection, and gives the loader an explicit signature (``path``, the reader's
    options, then :data:`COMMON_OPTIONS`) with no ``**kwargs``: the registry's ``validate``
    still rejects an unknown option with a did-you-mean, and so does a direct call.
    """

    def wrap(rows: Callable[..., Rows]) -> Callable[..., BenchmarkData]:
        own = list(inspect.signature(rows).parameters.values())[2:]
        clash = [p.name for p in own if p.name in COMMON_OPTIONS]
        if clash:
            raise TypeError(f"{rows.__name__}: {clash} are common loader options")
        path = inspect.Parameter("path", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="str")
        sig = inspect.Signature([path, *own, *_COMMON], return_annotation="BenchmarkData")

        @functools.wraps(rows)
        def load(*args: Any, **kwargs: Any) -> BenchmarkData:
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{dataset} loader: {exc}") from None
            bound.apply_defaults()
            opts = dict(bound.arguments)
            common = {k: opts.pop(k) for k in COMMON_OPTIONS}
            p = require_file(opts.pop("path"), what)
            col = Collector(dataset, p, missing_image=common["missing_image"])
            for where, sample, image_missing in rows(p, col, **opts):
                col.add(sample, where=where, image_missing=image_missing)
            return col.finish(limit=common["limit"], seed=common["seed"], ids=common["ids"])

        load.__signature__ = sig  # type: ignore[attr-defined]
        load.dataset = dataset  # type: ignore[attr-defined]
        return load

    return wrap


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
                col.bad(where, "not JSON", exc.msg)
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


def count_by(samples: Iterable[Sample], attr: str) -> dict[str, int]:
    return dict(Counter(str(getattr(s, attr)) for s in samples))
