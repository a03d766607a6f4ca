"""A-OKVQA (Schwenk et al., 2022): ``aokvqa_v1p0_{train,val,test}.json``.

A JSON list of ``{split, image_id, question_id, question, choices (4), correct_choice_idx,
direct_answers (10), difficult_direct_answer, rationales (3)}``. Test answers are private.

Gold answers for the judge: the de-duplicated ``direct_answers`` (the paper scores open-ended
answers). ``choices`` are kept on the sample; ``correct_choice_idx``, the ten direct answers with
repeats (for the official DA score) and the rationales go to ``metadata``. Images: COCO 2017
(``{image_root}/000000123456.jpg`` or ``{image_root}/val2017/...``).

    deepmmsearch data load aokvqa path=aokvqa_v1p0_val.json image_root=coco
"""

from __future__ import annotations

from pathlib import Path

from deepmmsearch.data.benchmarks.base import (
    Collector,
    DatasetError,
    ImageResolver,
    Rows,
    benchmark_loader,
    read_json,
    str_list,
)
from deepmmsearch.types import Sample

_PATTERNS = ("{id:0>12}", "{split}2017/{id:0>12}", "{id}")


@benchmark_loader("aokvqa", "A-OKVQA file")
def load_aokvqa(
    p: Path,
    col: Collector,
    *,
    image_root: str | None = None,
    image_map: str | None = None,
    check_images: bool = True,
) -> Rows:
    """Load A-OKVQA direct-answer samples (with their choices)."""
    rows = read_json(p, "A-OKVQA file")
    if not isinstance(rows, list):
        raise DatasetError(f"{p}: expected a JSON list of questions")
    is_test = "test" in p.name
    col.require_answers = not is_test
    images = ImageResolver(image_root, image_map, patterns=_PATTERNS, check=check_images)
    for i, row in enumerate(rows):
        col.report.rows += 1
        where = f"{p.name}[{i}]"
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) \
                or "question_id" not in row:
            col.bad(where, "malformed question")
            continue
        choices = row.get("choices")
        if choices is not None and (not isinstance(choices, list) or not choices):
            col.bad(where, "choices is not a list")
            continue
        split = str(row.get("split") or ("test" if is_test else "val"))
        sample = _sample(row, split)
        sample.image, why = images.resolve(row.get("image_id", ""), split=split)
        yield where, sample, why


def _sample(row: dict, split: str) -> Sample:
    direct = [str(a).strip() for a in row.get("direct_answers") or [] if a is not None]
    choices = row.get("choices")
    return Sample(
        id=str(row["question_id"]), question=row["question"].strip(),
        answers=str_list(direct), source="aokvqa", split=split,
        choices=[str(c) for c in choices] if choices else None,
        metadata={"image_id": row.get("image_id"), "all_answers": direct,
                  "correct_choice_idx": row.get("correct_choice_idx"),
                  "difficult_direct_answer": row.get("difficult_direct_answer"),
                  "rationales": row.get("rationales")},
    )
