"""DynVQA (Li et al., 2024; OmniSearch): ``dataset/DynVQA_{en,zh}/DynVQA_{lang}.{YYYYMM}.jsonl``.

Fields: ``image_url``, ``question``, ``question_id`` (e.g. ``en1``), ``answer`` (a list that can
hold non-strings: cast to str), and the golden query (spelled ``gloden_query`` up to 202412,
``golden_query`` in 202502).

``path`` is one release file, or the OmniSearch ``dataset`` folder (or a ``DynVQA_en`` folder) with
``version`` (default ``"202412"``, the English release whose 715 items match the paper's count;
``"latest"``: the newest present) and ``language`` picking the file. Answers change between
releases, so the version is recorded in every sample's metadata and in the report: name it in
reports. Every row is kept, as the official ``evaluate.py`` scores every row; items whose answers
are only in Chinese (85 in the 202502 English release) are counted in the report's notes, and
``drop_foreign_answers=true`` leaves them out (counted as filtered).

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
    Collector,
    DatasetError,
    ImageResolver,
    Rows,
    benchmark_loader,
    iter_jsonl,
    normalise_language,
    require_file,
    str_list,
)
from deepmmsearch.types import Sample

PAPER_VERSION = "202412"  # the English release with the paper's 715 items (see DECISIONS)
_FILE_RE = re.compile(r"DynVQA_(?P<lang>[a-z]+)\.(?P<version>\d{6})\.jsonl$")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def find_release(path: str | Path, language: str, version: str | None) -> Path:
    """The release file for ``language`` and ``version`` under ``path`` (a file is itself).
    ``version="latest"`` picks the newest present."""
    p = require_file(path, "DynVQA path")
    if p.is_file():
        return p
    want = None if version in (None, "latest") else str(version)
    found = [f for f in list(p.glob("*.jsonl")) + list(p.glob("DynVQA_*/*.jsonl"))
             if (m := _FILE_RE.search(f.name)) and m["lang"] == language
             and (want is None or m["version"] == want)]
    if not found:
        have = sorted(f.name for f in p.rglob("DynVQA_*.jsonl"))
        raise DatasetError(f"no DynVQA release for language={language!r} version={version!r} "
                           f"under {p}; found: {', '.join(have) or 'none'}")
    return max(found, key=lambda f: _FILE_RE.search(f.name)["version"])


@benchmark_loader("dynvqa", "DynVQA path")
def load_dynvqa(
    p: Path,
    col: Collector,
    *,
    version: str | int = PAPER_VERSION,
    language: str = "en",
    image_root: str | None = None,
    image_map: str | None = None,
    drop_foreign_answers: bool = False,
    check_images: bool = True,
) -> Rows:
    """Load one DynVQA release (see the module docstring)."""
    lang = normalise_language(language) or "en"
    file = find_release(p, lang, str(version))
    m = _FILE_RE.search(file.name)
    file_lang, file_version = (m["lang"], m["version"]) if m else (lang, str(version))
    col.report.path = str(file)
    col.report.notes.append(f"release {file_lang}.{file_version}")
    images = ImageResolver(image_root, image_map, patterns=("{basename}", "{id}"),
                           check=check_images)
    foreign = 0
    for n, (where, row) in enumerate(iter_jsonl(file, col)):
        question = row.get("question")
        if not isinstance(question, str) or not question.strip():
            col.bad(where, "no question")
            continue
        answers = str_list(row.get("answer"))
        if file_lang == "en" and answers and all(_CJK.search(a) for a in answers):
            if drop_foreign_answers:
                col.skip("answers only in Chinese")
                continue
            foreign += 1
        qid = str(row.get("question_id", f"{file_lang}{n}"))
        url = row.get("image_url") or ""
        meta: dict[str, Any] = {"version": file_version, "language": file_lang, "image_url": url,
                                "golden_query": row.get("golden_query", row.get("gloden_query"))}
        sample = Sample(id=qid, question=question.strip(), answers=answers, source="dynvqa",
                        split=f"{file_lang}.{file_version}", metadata=meta)
        sample.image, why = _resolve(images, qid, url)
        yield where, sample, why
    if foreign:
        rows = "row has" if foreign == 1 else "rows have"
        col.report.notes.append(f"{foreign} kept {rows} answers only in Chinese "
                                "(drop_foreign_answers=true leaves them out)")


def _resolve(images: ImageResolver, qid: str, url: str) -> tuple[str | None, str | None]:
    if url and url in images.map:
        return images.resolve(url, basename="")
    basename = Path(urlparse(url).path).name if url else ""
    return images.resolve(qid, basename=basename or qid)
