"""InfoSeek (Chen et al., 2023): ``infoseek_{train,val,test}.jsonl`` + the question-type file.

Rows: ``data_id``, ``image_id`` (OVEN ids), ``question``, ``answer`` (list), ``answer_eval``
(aliases; for numerical questions a list of ``{"wikidata": value, "range": [lo, hi]}``) and
``data_split`` (``val_unseen_question`` / ``val_unseen_entity``). Question types come from a
separate ``infoseek_val_qtype.jsonl`` (``data_id``, ``question_type``).

Images are OVEN snapshot files: give ``image_root`` (the folder the snapshot shards were unpacked
into: an image is found as ``{image_root}/{image_id}.jpg`` or as ``{image_id}.*`` in any
sub-folder, whatever the shard layout) and/or ``image_map`` (``ovenid2impath.csv``, or an
``id2image.jsonl``). The snapshot's inner folder names could not be checked here (it is released
behind a form); the sub-folder search does not depend on them.

Without ``qtype`` the question type is inferred: an ``answer_eval`` with a numeric range makes a
numerical question, anything else a string question (the official script scores time and
string questions the same way), and the report says so.

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
    Collector,
    ImageResolver,
    Rows,
    benchmark_loader,
    iter_jsonl,
    require_file,
    str_list,
)
from deepmmsearch.types import Sample

NO_QTYPE_NOTE = ("no qtype file: numerical questions recognised by their answer_eval ranges "
                 "(time and string questions are both exact match, as in the official script)")


@benchmark_loader("infoseek", "InfoSeek file")
def load_infoseek(
    p: Path,
    col: Collector,
    *,
    qtype: str | None = None,
    image_root: str | None = None,
    image_map: str | None = None,
    data_split: str | None = None,
    check_images: bool = True,
) -> Rows:
    """Load InfoSeek. ``data_split`` keeps one subset (``unseen_question`` / ``unseen_entity``)."""
    col.require_answers = not _is_test(p)
    qtypes = _load_qtypes(qtype, col) if qtype else {}
    if not qtype:
        col.report.notes.append(NO_QTYPE_NOTE)
    images = ImageResolver(image_root, image_map, patterns=("{id}",), check=check_images,
                           search_subfolders=True)
    for where, row in iter_jsonl(p, col):
        try:
            sample = _sample(row, qtypes)
        except (KeyError, TypeError, ValueError) as exc:
            col.bad(where, _kind(exc), str(exc))
            continue
        if data_split and not str(row.get("data_split", "")).endswith(data_split):
            col.skip(f"data_split != {data_split}")
            continue
        sample.image, why = images.resolve(row["image_id"])
        yield where, sample, why


def _kind(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    return str(exc) if isinstance(exc, TypeError) else "bad answer_eval"


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


def _answers(evals: list[Any]) -> tuple[list[str], list[float] | None]:
    """Gold texts (de-duplicated over all items) and the first numeric range (the official
    script reads ``answer_eval[0]["range"]``)."""
    answers: list[str] = []
    numeric_range = None
    for item in evals:
        if isinstance(item, dict) and "range" in item:
            lo, hi = (float(v) for v in item["range"][:2])
            numeric_range = numeric_range or [lo, hi]
            value = item.get("wikidata")
            texts = [f"{_fmt(float(value))} (any value from {_fmt(lo)} to {_fmt(hi)})"
                     if value is not None else f"from {_fmt(lo)} to {_fmt(hi)}"]
        else:
            texts = str_list(item)
        answers += [t for t in texts if t not in answers]
    return answers, numeric_range


def _sample(row: dict[str, Any], qtypes: dict[str, str]) -> Sample:
    data_id = str(row["data_id"])
    question = row["question"]
    if not isinstance(question, str):
        raise TypeError("question is not a string")
    evals = row.get("answer_eval", [])
    evals = [evals] if isinstance(evals, dict) else evals if isinstance(evals, list) else [evals]
    answers, numeric_range = _answers(evals)
    answers += [a for a in str_list(row.get("answer")) if a not in answers]
    qtype = qtypes.get(data_id) or (str(row["question_type"]).lower()
                                    if row.get("question_type") else None)
    meta = {k: row[k] for k in ("image_id", "data_split", "entity_id", "entity_text") if k in row}
    meta["answer_eval"] = evals
    if qtype is None:
        qtype = "numerical" if numeric_range is not None else "string"
        meta["question_type_inferred"] = True
    if numeric_range is not None:
        meta["numeric_range"] = numeric_range
    split = row.get("data_split") or (data_id.split("_")[1] if data_id.count("_") >= 2 else None)
    return Sample(id=data_id, question=question.strip(), answers=answers, question_type=qtype,
                  source="infoseek", split=str(split).split("_")[0] if split else None,
                  metadata=meta)
