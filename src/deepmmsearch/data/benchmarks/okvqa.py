"""OK-VQA (Marino et al., 2019): COCO-style question and annotation JSON files.

``OpenEnded_mscoco_val2014_questions.json`` holds ``{"questions": [{question_id, image_id,
question}], "data_subtype": "val2014", ...}`` and ``mscoco_val2014_annotations.json`` holds
``{"annotations": [{question_id, image_id, question_type, answer_type, answers: [{answer,
raw_answer, answer_confidence, answer_id}] × 10}]}``.

Gold answers for the judge are the de-duplicated ``answer`` values; all ten (with repeats) stay in
``metadata["all_answers"]`` for the official VQA accuracy
(:func:`deepmmsearch.data.scoring.vqa_accuracy`). Images: COCO val2014 under ``image_root``
(``COCO_val2014_000000123456.jpg``), or an ``image_map``.

    deepmmsearch data load okvqa path=OpenEnded_mscoco_val2014_questions.json \\
        annotations=mscoco_val2014_annotations.json image_root=coco/val2014
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

_PATTERNS = ("COCO_{subtype}_{id:0>12}", "{subtype}/COCO_{subtype}_{id:0>12}", "{id:0>12}", "{id}")


def _guess_annotations(questions: Path) -> Path:
    name = questions.name.replace("OpenEnded_", "").replace("_questions", "_annotations")
    return questions.with_name(name)


@benchmark_loader("okvqa", "OK-VQA questions file")
def load_okvqa(
    p: Path,
    col: Collector,
    *,
    annotations: str | None = None,
    image_root: str | None = None,
    image_map: str | None = None,
    check_images: bool = True,
) -> Rows:
    """Load OK-VQA (``annotations`` defaults to the sibling ``mscoco_*_annotations.json``)."""
    apath = Path(annotations) if annotations else _guess_annotations(p)
    qdata, adata = read_json(p, "OK-VQA questions file"), read_json(apath, "OK-VQA annotations")
    if not isinstance(qdata, dict) or not isinstance(qdata.get("questions"), list):
        raise DatasetError(f"{p}: expected an object with a 'questions' list")
    if not isinstance(adata, dict) or not isinstance(adata.get("annotations"), list):
        raise DatasetError(f"{apath}: expected an object with an 'annotations' list")
    subtype = str(qdata.get("data_subtype") or "val2014")
    by_qid = {}
    for i, ann in enumerate(adata["annotations"]):
        if isinstance(ann, dict) and "question_id" in ann and isinstance(ann.get("answers"), list):
            by_qid[str(ann["question_id"])] = ann
        else:
            col.note(f"{apath.name}[{i}]: malformed annotation")
    images = ImageResolver(image_root, image_map, patterns=_PATTERNS, check=check_images)
    for i, q in enumerate(qdata["questions"]):
        col.report.rows += 1
        where = f"{p.name}[{i}]"
        if not isinstance(q, dict) or not isinstance(q.get("question"), str) or "question_id" not in q:
            col.bad(where, "malformed question")
            continue
        ann = by_qid.get(str(q["question_id"]))
        if ann is None:
            col.bad(where, "no usable annotation", f"question {q['question_id']}")
            continue
        sample = _sample(q, ann, subtype)
        sample.image, why = images.resolve(q.get("image_id", ""), subtype=subtype)
        yield where, sample, why


def _sample(q: dict, ann: dict, subtype: str) -> Sample:
    raw = [a.get("answer") for a in ann["answers"] if isinstance(a, dict)]
    all_answers = [str(a).strip() for a in raw if a is not None and str(a).strip()]
    return Sample(
        id=str(q["question_id"]), question=q["question"].strip(), answers=str_list(all_answers),
        question_type=ann.get("question_type"), source="okvqa", split=subtype,
        metadata={"image_id": q.get("image_id"), "answer_type": ann.get("answer_type"),
                  "all_answers": all_answers},
    )
