"""InfoSeek (Chen et al., 2023): ``infoseek_{train,val,test}.jsonl`` + the question-type file.

Rows: ``data_id``, ``image_id`` (OVEN ids), ``question``, ``answer`` (list), ``answer_eval``
(aliases; for numerical questions a list of ``{"wikidata": value, "range": [lo, hi]}``) and
``data_split`` (``val_unseen_question`` / ``val_unseen_entity``). Question types come from a
separate ``infoseek_val_qtype.jsonl`` (``data_id``, ``question_type``).

Images are OVEN snapshot files: give ``image_map`` (``ovenid2impath.csv`` or an
``id2image.jsonl``) and/or ``image_root`` (``{image_root}/{image_id}.jpg``).

Gold answers for the judge: ``answer_eval`` (numeric ranges rendered as text) then ``answer``;
the official numeric range is kept in ``metadata["numeric_range"]`` for
:func:`deepmmsearch.data.scoring.infoseek_score`.

    deepmmsearch data load infoseek path=infoseek_val.jsonl qtype=infoseek_val_qtype.jsonl \\
        image_map=ovenid2impath.csv image_root=oven_images limit=2000
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepmmsearch.data.benchmarks.base import (
    BenchmarkData,
    Collector,
    ImageResolver,
    iter_jsonl,
    require_file,
    str_list,
)
from deepmmsearch.types import Sample


def load_infoseek(
    path: str,
    *,
    qtype: str | None = None,
    image_root: str | None = None,
    image_map: str | None = None,
    data_split: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    ids: str | list[str] | None = None,
    missing_image: str = "drop",
    check_images: bool = True,
) -> BenchmarkData:
    """Load InfoSeek. ``data_split`` keeps one subset (``unseen_question`` / ``unseen_entity``)."""
    p = require_file(path, "InfoSeek file")
    col = Collector("infoseek", p, missing_image=missing_image, require_answers=not _is_test(p))
    qtypes = _load_qtypes(qtype, col) if qtype else {}
    images = ImageResolver(image_root, image_map, patterns=("{id}",), check=check_images)
    for where, row in iter_jsonl(p, col):
        try:
            sample = _sample(row, qtypes)
        except (KeyError, TypeError, ValueError) as exc:
            col.bad(where, f"{type(exc).__name__}: {exc}")
            continue
        if data_split and not str(row.get("data_split", "")).endswith(data_split):
            col.skip(f"data_split != {data_split}")
            continue
        path_, why = images.resolve(row["image_id"])
        sample.image = path_
        col.add(sample, where=where, image_missing=why)
    return col.finish(limit=limit, seed=seed, ids=ids)


def _is_test(p: Path) -> bool:
    return "test" in p.name


def _load_qtypes(path: str, col: Collector) -> dict[str, str]:
    sub = Collector("infoseek-qtype", path)
    out = {}
    for where, row in iter_jsonl(require_file(path, "InfoSeek question-type file"), sub):
        if "data_id" in row and "question_type" in row:
            out[str(row["data_id"])] = str(row["question_type"]).lower()
        else:
            sub.bad(where, "needs data_id and question_type")
    for msg in sub.report.problems:
        col.note(f"qtype {msg}")
    return out


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def _sample(row: dict[str, Any], qtypes: dict[str, str]) -> Sample:
    data_id = str(row["data_id"])
    question = row["question"]
    if not isinstance(question, str):
        raise TypeError("question is not a string")
    qtype = qtypes.get(data_id) or (str(row["question_type"]).lower() if row.get("question_type") else None)
    evals = row.get("answer_eval", [])
    if isinstance(evals, dict):
        evals = [evals]
    answers: list[str] = []
    numeric_range = None
    for item in evals if isinstance(evals, list) else [evals]:
        if isinstance(item, dict) and "range" in item:
            lo, hi = (float(v) for v in item["range"][:2])
            numeric_range = [lo, hi]
            value = item.get("wikidata")
            answers.append(f"{_fmt(float(value))} (any value from {_fmt(lo)} to {_fmt(hi)})"
                           if value is not None else f"from {_fmt(lo)} to {_fmt(hi)}")
        else:
            answers += str_list(item)
    answers += [a for a in str_list(row.get("answer")) if a not in answers]
    split = row.get("data_split") or (data_id.split("_")[1] if data_id.count("_") >= 2 else None)
    meta = {k: row[k] for k in ("image_id", "data_split", "entity_id", "entity_text") if k in row}
    meta["answer_eval"] = evals
    if numeric_range is not None:
        meta["numeric_range"] = numeric_range
    return Sample(id=data_id, question=question.strip(), answers=answers, question_type=qtype,
                  source="infoseek", split=str(split).split("_")[0] if split else None,
                  metadata=meta)
