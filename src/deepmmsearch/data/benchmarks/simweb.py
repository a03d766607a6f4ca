"""``simweb``: the questions of a built SimWeb world (``deepmmsearch simweb build``).

``path`` is the world's folder (or its ``questions.jsonl``). ``split`` keeps one split
(``train``, ``val`` or ``test``: val and test entities never appear in a training question) and
``types`` some question types (``search-free``, ``image-then-text``, ``text-only``,
``time-sensitive``, ``two-hop``). Each :class:`~deepmmsearch.types.Sample` carries, in ``metadata``, what the
world's teacher and grounder need: ``world`` (the folder), ``scene``, ``entity`` (the target's
id), ``attribute``, ``expression`` (how the question refers to the entity in the image) and
``search`` (``none``, ``crop``, ``whole`` or ``text``: what an ideal agent does). It carries no
answer and no entity name.

``hold_out`` (a share, 0–1) sets aside the questions about a stable, hashed share of the entities
and ``part`` picks ``rest`` (the default) or ``held-out``: the quickstart distils and fine-tunes
on the rest of the train split and runs GRPO on the held-out part, so RL sees entities SFT never
did — as the paper's RL data (FVQA) is not its SFT data.

    deepmmsearch data load simweb path=runs/simweb split=test limit=200
    deepmmsearch data load simweb path=runs/simweb split=train hold_out=0.1 part=held-out
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

from deepmmsearch.data.benchmarks.base import (
    Collector,
    DatasetError,
    Rows,
    benchmark_loader,
    iter_jsonl,
    require_file,
    str_list,
)
from deepmmsearch.simweb.world import QUESTION_TYPES
from deepmmsearch.types import Sample

SPLITS = ("train", "val", "test")
TYPES = QUESTION_TYPES
PARTS = ("rest", "held-out")


def is_held_out(entity: str, share: float) -> bool:
    """Whether ``entity`` falls in the held-out ``share`` (a stable hash: the same in every run).

    >>> 900 < sum(is_held_out(f"e{i:06d}", 0.1) for i in range(10_000)) < 1100
    True
    """
    return zlib.crc32(entity.encode("utf-8")) % 10_000 < share * 10_000


@benchmark_loader("simweb", "SimWeb world")
def load_simweb(
    p: Path,
    col: Collector,
    *,
    split: str | None = None,
    types: Sequence[str] | str | None = None,
    hold_out: float = 0.0,
    part: str = "rest",
) -> Rows:
    """Load a world's questions as Samples (see the module docstring)."""
    qfile = p / "questions.jsonl" if p.is_dir() else p
    root = qfile.parent
    require_file(qfile, "SimWeb questions file")
    col.report.path = str(qfile)
    if split is not None and split not in SPLITS:
        raise DatasetError(f"simweb split must be one of {', '.join(SPLITS)}, got {split!r}")
    wanted = [types] if isinstance(types, str) else list(types or [])
    bad = [t for t in wanted if t not in TYPES]
    if bad:
        raise DatasetError(f"unknown simweb question types {bad}; choose from {', '.join(TYPES)}")
    if not 0.0 <= float(hold_out) < 1.0:
        raise DatasetError(f"simweb hold_out must be a share in [0, 1), got {hold_out!r}")
    if part not in PARTS:
        raise DatasetError(f"simweb part must be one of {', '.join(PARTS)}, got {part!r}")
    for where, row in iter_jsonl(qfile, col):
        if split is not None and row.get("split") != split:
            col.skip(f"split != {split}")
            continue
        if hold_out and (is_held_out(str(row.get("entity", "")), hold_out) != (part == "held-out")):
            col.skip(f"hold_out part != {part}")
            continue
        if wanted and row.get("type") not in wanted:
            col.skip("question type")
            continue
        try:
            sample = _sample(row, root)
        except (KeyError, TypeError) as exc:
            col.bad(where, f"missing field {exc}")
            continue
        image_missing = (
            None if Path(sample.image or "").is_file() else f"image not found: {sample.image}"
        )
        yield where, sample, image_missing


def _sample(row: dict, root: Path) -> Sample:
    qtype = str(row["type"])
    meta = {k: row.get(k) for k in ("scene", "entity", "attribute", "expression", "search", "hop")}
    return Sample(
        id=str(row["id"]),
        question=str(row["question"]),
        answers=str_list(row["answers"]),
        image=str((root / row["image"]).resolve()),
        question_type=qtype,
        source="simweb",
        split=row.get("split"),
        category=row.get("category") or None,
        search_required=qtype != "search-free",
        metadata={"world": str(root.resolve()), **meta},
    )
