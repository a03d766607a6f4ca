"""``simweb``: the questions of a built SimWeb world (``deepmmsearch simweb build``).

``path`` is the world's folder (or its ``questions.jsonl``). ``split`` keeps one split
(``train``, ``val`` or ``test``: val and test entities never appear in a training question) and
``types`` some question types (``search-free``, ``image-then-text``, ``text-only``,
``time-sensitive``, ``two-hop``). Each :class:`~deepmmsearch.types.Sample` carries, in ``metadata``, what the
world's teacher and grounder need: ``world`` (the folder), ``scene``, ``entity`` (the target's
id), ``attribute``, ``expression`` (how the question refers to the entity in the image) and
``search`` (``none``, ``crop``, ``whole`` or ``text``: what an ideal agent does). It carries no
answer and no entity name.

    deepmmsearch data load simweb path=runs/simweb split=test limit=200
"""

from __future__ import annotations

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


@benchmark_loader("simweb", "SimWeb world")
def load_simweb(
    p: Path,
    col: Collector,
    *,
    split: str | None = None,
    types: Sequence[str] | str | None = None,
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
    for where, row in iter_jsonl(qfile, col):
        if split is not None and row.get("split") != split:
            col.skip(f"split != {split}")
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
