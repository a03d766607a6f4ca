"""Encyclopedic-VQA (Mensink et al., 2023): ``train.csv`` / ``val.csv`` / ``test.csv``.

Columns used: ``question``, ``answer`` (annotator alternatives separated by ``|``; the parts of a
``multi_answer`` alternative joined by ``&&``), ``dataset_image_ids`` (up to 5, ``|``-separated),
``dataset_name`` (``inaturalist`` / ``landmarks``), ``question_type`` (``templated``,
``automatic``, ``multi_answer``, ``2_hop``), ``encyclopedic_vqa_split``, ``wikipedia_url``,
``wikipedia_title``, ``question_original``, ``dataset_category_id``.

Rows have no id: a sample's id is ``evqa_{split}_{row}`` (0-based data row), stable across loads.
A multi-answer alternative stays one answer ("A and B"); its parts are in
``metadata["answer_parts"]``. Images: iNaturalist 2021 needs ``image_map`` (its JSON with an
``images`` list of ``{id, file_name}``); Google Landmarks v2 files are found under ``image_root``
as ``{a}/{b}/{c}/{id}.jpg`` (optionally below ``train/``, ``index/``, ``test/`` or the dataset
name). The first image of each question is used (``all_images=True``: one sample per image).

    deepmmsearch data load evqa path=test.csv image_root=evqa_images image_map=inat_val.json \\
        question_types='[templated, automatic, multi_answer]' limit=2000
"""

from __future__ import annotations

import re
from typing import Any

from deepmmsearch.data.benchmarks.base import (
    BenchmarkData,
    Collector,
    ImageResolver,
    iter_table,
    require_file,
)
from deepmmsearch.types import Sample

_PATTERNS = (
    "{id}", "{dataset}/{id}", "{a}/{b}/{c}/{id}", "{dataset}/{a}/{b}/{c}/{id}",
    "train/{a}/{b}/{c}/{id}", "index/{a}/{b}/{c}/{id}", "test/{a}/{b}/{c}/{id}",
    "{dataset}/train/{a}/{b}/{c}/{id}",
)


def load_evqa(
    path: str,
    *,
    image_root: str | None = None,
    image_map: str | None = None,
    question_types: list[str] | None = None,
    all_images: bool = False,
    limit: int | None = None,
    seed: int = 0,
    ids: str | list[str] | None = None,
    missing_image: str = "drop",
    check_images: bool = True,
) -> BenchmarkData:
    """Load E-VQA. ``question_types`` keeps only those types (e.g. leave out ``2_hop``)."""
    p = require_file(path, "E-VQA CSV")
    col = Collector("evqa", p, missing_image=missing_image)
    images = ImageResolver(image_root, image_map, patterns=_PATTERNS, check=check_images)
    wanted = set(question_types) if question_types else None
    for n, (where, row) in enumerate(iter_table(p, col, "E-VQA CSV")):
        qtype = (row.get("question_type") or "").strip() or None
        if wanted is not None and qtype not in wanted:
            col.skip(f"question_type {qtype}")
            continue
        try:
            base = _sample(row, n, p.stem)
        except (KeyError, ValueError) as exc:
            col.bad(where, f"{type(exc).__name__}: {exc}")
            continue
        image_ids = base.metadata["image_ids"] or [""]
        for k, image_id in enumerate(image_ids if all_images else image_ids[:1]):
            sample = Sample.from_dict(base.to_dict())
            if all_images and len(image_ids) > 1:
                sample.id = f"{base.id}_{k}"
            why = "no dataset_image_ids"
            if image_id:
                sample.image, why = images.resolve(
                    image_id, dataset=row.get("dataset_name", ""),
                    a=image_id[:1], b=image_id[1:2], c=image_id[2:3])
            col.add(sample, where=where, image_missing=why if sample.image is None else None)
    return col.finish(limit=limit, seed=seed, ids=ids)


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
