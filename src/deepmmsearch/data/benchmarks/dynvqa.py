"""DynVQA (Li et al., 2024; OmniSearch): ``dataset/DynVQA_{en,zh}/DynVQA_{lang}.{YYYYMM}.jsonl``.

Fields: ``image_url``, ``question``, ``question_id`` (e.g. ``en1``), ``answer`` (a list that can
hold non-strings: cast to str), and the golden query (spelled ``gloden_query`` up to 202412,
``golden_query`` in 202502).

``path`` is one release file, or the OmniSearch ``dataset`` folder (or a ``DynVQA_en`` folder) with
``version`` (e.g. ``"202412"``; default: the newest present) and ``language`` picking the file.
Answers change between releases, so the version is recorded in every sample's metadata: name it
in reports. With ``language="en"``, items whose answers are only in Chinese (85 in the 202502
English release) are filtered out unless ``keep_foreign_answers``.

Images are URLs: download them once into ``image_root`` (files named by the URL's basename or by
``question_id``), or give ``image_map`` (question id or URL → path).

    deepmmsearch data load dynvqa path=OmniSearch/dataset version=202412 image_root=dynvqa_images
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from deepmmsearch.data.benchmarks.base import (
    BenchmarkData,
    Collector,
    DatasetError,
    ImageResolver,
    iter_jsonl,
    normalise_language,
    require_file,
    str_list,
)
from deepmmsearch.types import Sample

_FILE_RE = re.compile(r"DynVQA_(?P<lang>[a-z]+)\.(?P<version>\d{6})\.jsonl$")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def find_release(path: str | Path, language: str, version: str | None) -> Path:
    """The release file for ``language`` and ``version`` (newest when None) under ``path``."""
    p = require_file(path, "DynVQA path")
    if p.is_file():
        return p
    found = [f for f in list(p.glob("*.jsonl")) + list(p.glob("DynVQA_*/*.jsonl"))
             if (m := _FILE_RE.search(f.name)) and m["lang"] == language
             and (version is None or m["version"] == str(version))]
    if not found:
        have = sorted(f.name for f in p.rglob("DynVQA_*.jsonl"))
        raise DatasetError(f"no DynVQA release for language={language!r} version={version!r} "
                           f"under {p}; found: {', '.join(have) or 'none'}")
    return max(found, key=lambda f: _FILE_RE.search(f.name)["version"])


def load_dynvqa(
    path: str,
    *,
    version: str | None = None,
    language: str = "en",
    image_root: str | None = None,
    image_map: str | None = None,
    keep_foreign_answers: bool = False,
    limit: int | None = None,
    seed: int = 0,
    ids: str | list[str] | None = None,
    missing_image: str = "drop",
    check_images: bool = True,
) -> BenchmarkData:
    """Load one DynVQA release (see the module docstring)."""
    lang = normalise_language(language) or "en"
    file = find_release(path, lang, str(version) if version is not None else None)
    m = _FILE_RE.search(file.name)
    file_lang, file_version = (m["lang"], m["version"]) if m else (lang, version)
    col = Collector("dynvqa", file, missing_image=missing_image)
    images = ImageResolver(image_root, image_map, patterns=("{basename}", "{id}"),
                           check=check_images)
    for n, (where, row) in enumerate(iter_jsonl(file, col)):
        question = row.get("question")
        if not isinstance(question, str) or not question.strip():
            col.bad(where, "no question")
            continue
        answers = str_list(row.get("answer"))
        if file_lang == "en" and answers and not keep_foreign_answers and all(
                _CJK.search(a) for a in answers):
            col.skip("answers only in Chinese")
            continue
        qid = str(row.get("question_id", f"{file_lang}{n}"))
        url = row.get("image_url") or ""
        meta: dict[str, Any] = {"version": file_version, "language": file_lang, "image_url": url,
                                "golden_query": row.get("golden_query", row.get("gloden_query"))}
        sample = Sample(id=qid, question=question.strip(), answers=answers, source="dynvqa",
                        split=f"{file_lang}.{file_version}", metadata=meta)
        sample.image, why = _resolve(images, qid, url)
        col.add(sample, where=where, image_missing=why)
    return col.finish(limit=limit, seed=seed, ids=ids)


def _resolve(images: ImageResolver, qid: str, url: str) -> tuple[str | None, str | None]:
    if url and url in images.map:
        return images.resolve(url, basename="")
    basename = Path(urlparse(url).path).name if url else ""
    path, why = images.resolve(qid, basename=basename or qid)
    return path, why
