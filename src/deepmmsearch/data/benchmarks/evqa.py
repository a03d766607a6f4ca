"""Encyclopedic-VQA (Mensink et al., 2023): ``train.csv`` / ``val.csv`` / ``test.csv``.

Columns used: ``question``, ``answer`` (annotator alternatives separated by ``|``; the parts of a
``multi_answer`` alternative joined by ``&&``), ``dataset_image_ids`` (up to 5, ``|``-separated),
``dataset_name`` (``inaturalist`` / ``landmarks``), ``question_type`` (``templated``,
``automatic``, ``multi_answer``, ``2_hop``), ``encyclopedic_vqa_split``, ``wikipedia_url``,
``wikipedia_title``, ``question_original``, ``dataset_category_id``.

Rows have no id: a sample's id is ``evqa_{split}_{row}`` (0-based data row), stable across loads.
A multi-answer alternative stays one answer ("A and B"); its parts are in
``metadata["answer_parts"]``. Images, as the two datasets release them: iNaturalist 2021 ids
(``dataset_name`` ``inaturalist``) are looked up in ``image_map`` — the iNaturalist annotation
file(s), ``train.json`` / ``val.json``, whose ``images`` list maps ``id`` to ``file_name`` (a list
of files is accepted) — and the file names are read under ``inat_root`` (default: ``image_root``,
then the map's folder). Google Landmarks v2 files are found under ``image_root`` as
``train/{a}/{b}/{c}/{id}.jpg`` (also without ``train/``, or below ``index/``, ``test/`` or the
dataset name). A missing image's message says which file to give. The first image of each question
is used (``all_images=True``: one sample per image).

    deepmmsearch data load evqa path=test.csv image_root=evqa_images image_map=inat_val.json \\
        question_types='[templated, automatic, multi_answer]' limit=2000
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from deepmmsearch.data.benchmarks.base import (
    Collector,
    ImageResolver,
    Rows,
    benchmark_loader,
    iter_table,
)
from deepmmsearch.types import Sample

_LANDMARK_PATTERNS = (
    "{id}", "{dataset}/{id}", "{a}/{b}/{c}/{id}", "{dataset}/{a}/{b}/{c}/{id}",
    "train/{a}/{b}/{c}/{id}", "index/{a}/{b}/{c}/{id}", "test/{a}/{b}/{c}/{id}",
    "{dataset}/train/{a}/{b}/{c}/{id}",
)
INAT_HINT = ("iNaturalist 2021 ids are looked up in image_map: give the iNaturalist 2021 "
             "annotation file(s) (train.json and/or val.json, whose 'images' list maps each id "
             "to its file_name) and inat_root (the folder holding their train/ and val/ folders)")
GLDV2_HINT = ("Google Landmarks v2 images are found under image_root as train/{a}/{b}/{c}/{id}.jpg "
              "(the first three characters of the id)")


@benchmark_loader("evqa", "E-VQA CSV")
def load_evqa(
    p: Path,
    col: Collector,
    *,
    image_root: str | None = None,
    image_map: str | list[str] | None = None,
    inat_root: str | None = None,
    question_types: list[str] | None = None,
    all_images: bool = False,
    check_images: bool = True,
) -> Rows:
    """Load E-VQA. ``question_types`` keeps only those types (e.g. leave out ``2_hop``)."""
    inat = ImageResolver(None, image_map, patterns=(), check=check_images,
                         map_root=inat_root or image_root)
    landmarks = ImageResolver(image_root, None, patterns=_LANDMARK_PATTERNS, check=check_images)
    wanted = set(question_types) if question_types else None
    for n, (where, row) in enumerate(iter_table(p, col, "E-VQA CSV")):
        qtype = (row.get("question_type") or "").strip() or None
        if wanted is not None and qtype not in wanted:
            col.skip(f"question_type {qtype}")
            continue
        try:
            base = _sample(row, n, p.stem)
        except (KeyError, ValueError) as exc:
            col.bad(where, "missing column", str(exc))
            continue
        image_ids = base.metadata["image_ids"] or [""]
        for k, image_id in enumerate(image_ids if all_images else image_ids[:1]):
            sample = Sample.from_dict(base.to_dict())
            if all_images and len(image_ids) > 1:
                sample.id = f"{base.id}_{k}"
            why = "no image: dataset_image_ids is empty"
            if image_id:
                sample.image, why = _resolve(inat, landmarks, image_id, row.get("dataset_name", ""))
            yield where, sample, why if sample.image is None else None


def _resolve(inat: ImageResolver, landmarks: ImageResolver, image_id: str,
             dataset: str) -> tuple[str | None, str | None]:
    if image_id in inat.map:
        return inat.resolve(image_id)
    if "inat" in dataset.lower():
        return None, f"image {image_id!r} not found: {INAT_HINT}"
    path, why = landmarks.resolve(image_id, dataset=dataset, a=image_id[:1], b=image_id[1:2],
                                  c=image_id[2:3])
    return path, (f"{why}; {GLDV2_HINT}" if why else None)


def split_answers(field: str) -> tuple[list[str], list[list[str]]]:
    """``"a|b && c"`` → (["a", "b and c"], [["a"], ["b", "c"]])."""
    answers, parts = [], []
    for alt in field.split("|"):
        pieces = [x.strip() for x in alt.split("&&") if x.strip()]
        if not pieces:
            continue
        text = pieces[0] if len(pieces) == 1 else ", ".join(pieces[:-1]) + " and " + pieces[-1]
        if text not in answers:
            answers.append(text)
            parts.append(pieces)
    return answers, parts


def _sample(row: dict[str, Any], n: int, stem: str) -> Sample:
    question = (row["question"] or "").strip()
    answers, parts = split_answers(row["answer"] or "")
    split = (row.get("encyclopedic_vqa_split") or stem).strip()
    image_ids = [x for x in re.split(r"[|,\s]+", row.get("dataset_image_ids") or "") if x]
    meta = {k: row[k] for k in ("wikipedia_url", "wikipedia_title", "dataset_name",
                                "dataset_category_id", "question_original") if row.get(k)}
    meta.update(image_ids=image_ids, answer_parts=parts)
    return Sample(id=f"evqa_{split}_{n}", question=question, answers=answers,
                  question_type=(row.get("question_type") or "").strip() or None,
                  source="evqa", split=split, metadata=meta)
