"""FVQA (MMSearch-R1's RL data; Hugging Face ``lmms-lab/FVQA``): a veRL-style parquet.

Columns: ``prompt`` (``[{role, content}]`` holding the question, no ``<image>`` placeholder),
``images`` (``[{bytes, path}]`` with embedded JPEG/PNG bytes), ``reward_model``
(``{ground_truth, candidate_answers: JSON-encoded alias list, style}``), ``data_source``
(e.g. ``mmsearch_r1/fvqa_train``), ``image_urls`` (always null), and in the Hugging Face release
``data_id`` and ``category`` (``search_free`` / ``search_required``; absent on test rows).

Gold answers: ``ground_truth`` then the decoded aliases. ``category`` becomes
``Sample.search_required``. Image bytes are written once to ``cache_dir``.
:func:`deepmmsearch.data.export.write_verl_parquet` writes the layout veRL needs back (with the
``<image>`` placeholder and ``agent_name`` added).

    deepmmsearch data load fvqa path=fvqa_train.parquet cache_dir=runs/images/fvqa
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from deepmmsearch.data.benchmarks.base import (
    Collector,
    ImageStore,
    Rows,
    benchmark_loader,
    default_cache_dir,
    iter_table,
    str_list,
)
from deepmmsearch.protocol import IMAGE_PLACEHOLDER
from deepmmsearch.types import Sample


@benchmark_loader("fvqa", "FVQA file")
def load_fvqa(p: Path, col: Collector, *, cache_dir: str | None = None) -> Rows:
    """Load an FVQA parquet (or a JSONL with the same columns)."""
    store = ImageStore(cache_dir or default_cache_dir("fvqa"))
    for n, (where, row) in enumerate(iter_table(p, col, "FVQA file")):
        try:
            sample = _sample(row, n)
        except (KeyError, TypeError, ValueError) as exc:
            col.bad(where, str(exc) if isinstance(exc, ValueError) else "malformed row", str(exc))
            continue
        images = row.get("images") or []
        why: str | None = "no image in the row"
        if images:
            sample.image, why = store.save(images[0])
        yield where, sample, why if sample.image is None else None


def decode_aliases(value: Any) -> list[str]:
    """``candidate_answers`` is a JSON-encoded list (sometimes already a list)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str_list(value)
    return str_list(value)


def _question(prompt: Any) -> str:
    if isinstance(prompt, str):
        text = prompt
    else:
        users = [m.get("content") for m in prompt or [] if isinstance(m, dict)
                 and m.get("role") == "user"]
        text = next((c for c in users if isinstance(c, str)), None)
        if text is None:
            raise ValueError("prompt has no user message with text")
    return re.sub(r"\s+", " ", text.replace(IMAGE_PLACEHOLDER, " ")).strip()


def _sample(row: dict[str, Any], n: int) -> Sample:
    reward = row.get("reward_model")
    if not isinstance(reward, dict) or reward.get("ground_truth") in (None, ""):
        raise ValueError("reward_model.ground_truth is missing")
    answers = str_list(reward["ground_truth"])
    answers += [a for a in decode_aliases(reward.get("candidate_answers")) if a not in answers]
    source = str(row.get("data_source") or "fvqa")
    split = "test" if "test" in source else "train" if "train" in source else None
    category = row.get("category")
    return Sample(
        id=str(row.get("data_id") or f"{source.rsplit('/', 1)[-1]}_{n}"),
        question=_question(row.get("prompt")), answers=answers, source="fvqa", split=split,
        search_required={"search_required": True, "search_free": False}.get(category),
        metadata={"data_source": source, "fvqa_category": category,
                  "reward_style": reward.get("style")},
    )
