"""``jsonl``: our own sample files, and any simple JSONL/JSON/CSV/parquet of questions.

A row is a :class:`~deepmmsearch.types.Sample` as written by ``BenchmarkData.write_jsonl``, or a
simple record: ``id`` (or ``question_id`` / ``data_id``; default: the row number), ``question``,
gold answers in ``answers`` / ``answer`` / ``gold`` (a string or a list), ``image`` (or
``image_path``) relative to ``image_root`` (default: the file's folder), and optional
``category``, ``question_type``, ``search_required``, ``choices``, ``split``, ``metadata``.

    deepmmsearch data load jsonl path=my_questions.jsonl source=mine
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepmmsearch.data.benchmarks.base import (
    Collector,
    ImageResolver,
    Rows,
    benchmark_loader,
    iter_table,
    str_list,
)
from deepmmsearch.types import Sample


@benchmark_loader("jsonl", "sample file")
def load_jsonl(
    p: Path,
    col: Collector,
    *,
    source: str | None = None,
    image_root: str | None = None,
    require_answers: bool = True,
    check_images: bool = True,
) -> Rows:
    """Load generic question rows (see the module docstring)."""
    col.report.dataset = source or "jsonl"
    col.require_answers = require_answers
    images = ImageResolver(image_root or p.parent, check=check_images)
    for n, (where, row) in enumerate(iter_table(p, col, "sample file")):
        question = row.get("question")
        if not isinstance(question, str):
            col.bad(where, "no question")
            continue
        sample = _sample(row, n, question, source)
        image = row.get("image", row.get("image_path"))
        why = None
        if image:
            sample.image, why = images.resolve_path(str(image))
        yield where, sample, why


def _sample(row: dict[str, Any], n: int, question: str, source: str | None) -> Sample:
    return Sample(
        id=str(next((row[k] for k in ("id", "question_id", "data_id") if row.get(k) is not None), n)),
        question=question.strip(),
        answers=str_list(next((row[k] for k in ("answers", "answer", "gold") if k in row), None)),
        question_type=_opt(row.get("question_type")), source=str(row.get("source") or source or "jsonl"),
        split=_opt(row.get("split")), choices=row.get("choices") or None,
        category=_opt(row.get("category")), search_required=_bool(row.get("search_required")),
        metadata=dict(row.get("metadata") or {}),
    )


def _opt(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "search_required")
