"""SimpleVQA (Cheng et al., 2025): Hugging Face ``m-a-p/SimpleVQA``, split ``test``.

Fields: ``data_id``, ``image`` (base64 string, or ``{bytes, path}`` in a parquet export),
``image_description``, ``language``, ``question``, ``answer``, ``original_category``, ``source``,
``atomic_question``, ``atomic_fact``, ``vqa_category``. Reads parquet, JSONL, JSON or TSV.

The paper uses all English items: ``language="en"`` (the default) is a filter on the
``language`` field (``EN``/``en``/``English`` all count), not a split; ``language=None`` keeps
all. Images are decoded and written once to ``cache_dir`` (named by content hash).

    deepmmsearch data load simplevqa path=SimpleVQA/test.parquet cache_dir=runs/images/simplevqa
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepmmsearch.data.benchmarks.base import (
    IMAGE_EXTENSIONS,
    Collector,
    ImageResolver,
    ImageStore,
    Rows,
    benchmark_loader,
    default_cache_dir,
    iter_table,
    normalise_language,
    str_list,
)
from deepmmsearch.types import Sample


@benchmark_loader("simplevqa", "SimpleVQA file")
def load_simplevqa(
    p: Path,
    col: Collector,
    *,
    language: str | None = "en",
    cache_dir: str | None = None,
    image_root: str | None = None,
    check_images: bool = True,
) -> Rows:
    """Load SimpleVQA, keeping the items in ``language`` (None: every language)."""
    store = ImageStore(cache_dir or default_cache_dir("simplevqa"))
    files = ImageResolver(image_root or p.parent, check=check_images)
    want = normalise_language(language)
    for n, (where, row) in enumerate(iter_table(p, col, "SimpleVQA file")):
        lang = normalise_language(row.get("language"))
        if want is not None and lang != want:
            col.skip(f"language {lang}")
            continue
        question = row.get("question")
        if not isinstance(question, str):
            col.bad(where, "no question")
            continue
        sample = Sample(
            id=str(row.get("data_id", n)), question=question.strip(),
            answers=str_list(row.get("answer")), source="simplevqa", split="test",
            category=_opt(row.get("vqa_category")),
            metadata={k: row[k] for k in ("language", "original_category", "source",
                                          "atomic_question", "atomic_fact",
                                          "image_description") if row.get(k) is not None},
        )
        sample.image, why = _image(row.get("image"), store, files)
        yield where, sample, why


def _opt(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _image(value: Any, store: ImageStore, files: ImageResolver) -> tuple[str | None, str | None]:
    if isinstance(value, dict) and not value.get("bytes") and value.get("path"):
        value = value["path"]
    if isinstance(value, str) and len(value) < 512 and Path(value).suffix in IMAGE_EXTENSIONS:
        return files.resolve_path(value)
    return store.save(value)
