"""The 2026 search suite's benchmarks (MMSearch, LiveVQA, BrowseComp-VL, MMSearch-Plus), as released.

- ``mmsearch``: MMSearch (Jiang et al., 2024; Hugging Face ``CaraJ/MMSearch``, config and split
  ``end2end``) — parquet/JSONL rows with ``sample_id``, ``query``, ``query_image`` (an image, or
  null for a text-only query), ``image_search_result`` (the screenshot of a reverse image search
  the benchmark gives the model), ``gt_answer``, ``alternative_gt_answers``, ``gt_requery``,
  ``area``, ``subfield``, ``timestamp``. Official metric: the end-to-end F1 (SQuAD-style token F1,
  maximised over ``gt_answer`` and the alternatives; :func:`deepmmsearch.data.scoring_general.mmsearch_f1`).
  A text-only query has no image by design: it is yielded with ``image=None`` and not counted
  as a missing image. The column names follow lmms-eval's ``mmsearch`` task (which reads this
  dataset); the parquet file names inside the Hugging Face repository were not checked.
- ``livevqa``: LiveVQA (Fu et al., 2025; github ``fumingyang2004/LIVEVQA``,
  ``liveVQA_benchmarks/{News,Paper,Video}/benchmark.json``) — a JSON list of ``{id, img_path,
  level1_qa, level2_qa, source, time}`` where each ``levelN_qa`` holds ``question``,
  ``question_type``, ``options`` ("A. ..."), ``Ground_Truth`` (a letter) and ``Ground_Truth_List``
  (the accepted answer texts). One sample per level (id ``{id}_l1`` / ``{id}_l2``), open-ended by
  default with the options kept as ``choices``; images under ``image_root`` by ``img_path``. The
  peers' 2026 "LiveVQA" test subsets were not found released; this reads the repository's files.
  No official script scores open answers: use the judge.
- ``browsecomp_vl``: BrowseComp-VL (WebWatcher, github ``Alibaba-NLP/WebAgent``,
  ``WebWatcher/benchmark/bc_vl_level{1,2}.jsonl``) — JSONL rows ``{question, image_path (a URL),
  answers, domain}``; the level comes from the file name. Ids are the image file's stem
  (``level1_7``), images are looked up under ``image_root`` by the URL's file name (download them
  once). Official metric: an LLM judge with BrowseComp's grading structure (``llm`` judge,
  ``mode: browsecomp``). A Hugging Face copy with other columns may exist; it was not checked.
- ``mmsearch_plus``: MMSearch-Plus (Tao et al., 2025; Hugging Face ``Cie1/MMSearch-Plus``) —
  rows with ``question`` and ``answer`` (a list), both encrypted (base64 of the text XOR-ed with
  the SHA-256 of a canary string, repeated; ``canary`` defaults to the dataset's name, as its
  README tells), ``num_images`` and ``img_1`` ... ``img_5`` (images, not encrypted),
  ``category``, ``difficulty``, ``subtask``. Plain-text rows are read as they are. The first
  image is the sample's; all are kept in ``metadata["images"]``. No official evaluation script
  is released: use the judge.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from deepmmsearch.data.benchmarks.base import (
    Collector,
    DatasetError,
    ImageResolver,
    ImageStore,
    Rows,
    benchmark_loader,
    default_cache_dir,
    iter_table,
    read_json,
    str_list,
)
from deepmmsearch.types import Sample


def _text(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"no {key}")
    return value.strip()


# --- MMSearch ----------------------------------------------------------------------------------


@benchmark_loader("mmsearch", "MMSearch end2end file")
def load_mmsearch(p: Path, col: Collector, *, cache_dir: str | None = None) -> Rows:
    """Load MMSearch's end-to-end subset (see the module docstring)."""
    store = ImageStore(cache_dir or default_cache_dir("mmsearch"))
    for n, (where, row) in enumerate(iter_table(p, col, "MMSearch end2end file")):
        try:
            query = _text(row, "query")
        except ValueError as exc:
            col.bad(where, str(exc))
            continue
        answers = str_list(row.get("gt_answer")) + [
            a for a in str_list(row.get("alternative_gt_answers")) if a != row.get("gt_answer")]
        meta = {k: row.get(k) for k in ("area", "subfield", "timestamp", "gt_requery")
                if row.get(k) is not None}
        sample = Sample(id=str(row.get("sample_id") or n), question=query, answers=answers,
                        source="mmsearch", split="end2end", category=_opt(row.get("area")),
                        search_required=True, metadata=meta)
        why = None
        if row.get("query_image") is not None:
            sample.image, why = store.save(row["query_image"])
            if row.get("image_search_result") is not None:
                meta["image_search_result"] = store.save(row["image_search_result"])[0]
        yield where, sample, why


def _opt(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


# --- LiveVQA -----------------------------------------------------------------------------------


@benchmark_loader("livevqa", "LiveVQA benchmark.json")
def load_livevqa(
    p: Path,
    col: Collector,
    *,
    image_root: str | None = None,
    levels: list[int] | None = None,
    check_images: bool = True,
) -> Rows:
    """Load a LiveVQA ``benchmark.json`` (see the module docstring)."""
    rows = read_json(p, "LiveVQA benchmark.json")
    if not isinstance(rows, list):
        raise DatasetError(f"{p}: expected a JSON list of items")
    wanted = set(levels or (1, 2))
    images = ImageResolver(image_root or p.parent, check=check_images, search_subfolders=True)
    for i, row in enumerate(rows):
        col.report.rows += 1
        where = f"{p.name}[{i}]"
        qas = [(k, row.get(f"level{k}_qa")) for k in (1, 2)] if isinstance(row, dict) else []
        if not qas or "id" not in row or not any(isinstance(qa, dict) for _, qa in qas):
            col.bad(where, "no id or no levelN_qa")
            continue
        for level, qa in qas:
            if not isinstance(qa, dict):
                continue
            if level not in wanted:
                col.skip(f"level {level}")
                continue
            sample = _livevqa_sample(row, level, qa)
            name = qa.get("img_path") or row.get("img_path")
            sample.image, why = images.resolve_path(str(name)) if name else (None, "no image: no img_path")
            if why and name:
                sample.image, why = images.resolve(Path(str(name)).stem)
            yield where, sample, why


def _livevqa_sample(row: dict[str, Any], level: int, qa: dict[str, Any]) -> Sample:
    answers = str_list(qa.get("Ground_Truth_List"))
    options = [str(o) for o in qa.get("options") or []]
    letter = str(qa.get("Ground_Truth") or "").strip()
    if not answers and letter and options:  # fall back on the option text the letter names
        answers = [re.sub(r"^[A-Z][.)]\s*", "", o) for o in options if o.startswith(letter)]
    return Sample(
        id=f"{row['id']}_l{level}", question=str(qa.get("question") or "").strip(),
        answers=answers, question_type=_opt(qa.get("question_type")), source="livevqa",
        split=f"level{level}", choices=options or None, category=_opt(row.get("source")),
        search_required=True,
        metadata={"level": level, "ground_truth_letter": letter, "time": row.get("time"),
                  "img_url": qa.get("img_url")},
    )


# --- BrowseComp-VL -----------------------------------------------------------------------------

_LEVEL_RE = re.compile(r"level[_-]?(\d+)", re.IGNORECASE)


@benchmark_loader("browsecomp_vl", "BrowseComp-VL file")
def load_browsecomp_vl(
    p: Path,
    col: Collector,
    *,
    image_root: str | None = None,
    check_images: bool = True,
) -> Rows:
    """Load one BrowseComp-VL level file (see the module docstring)."""
    m = _LEVEL_RE.search(p.name)
    level = f"level{m.group(1)}" if m else p.stem
    images = ImageResolver(image_root or p.parent, patterns=("{name}", "{level}/{name}", "{id}"),
                           check=check_images)
    for n, (where, row) in enumerate(iter_table(p, col, "BrowseComp-VL file")):
        try:
            question = _text(row, "question")
        except ValueError as exc:
            col.bad(where, str(exc))
            continue
        url = str(row.get("image_path") or row.get("image") or "")
        name = Path(urlparse(url).path).name
        sid = str(row.get("id") or Path(name).stem or f"{level}_{n}")
        sample = Sample(id=sid, question=question,
                        answers=str_list(row.get("answers", row.get("answer"))),
                        source="browsecomp_vl", split=level, category=_opt(row.get("domain")),
                        search_required=True, metadata={"image_url": url, "level": level})
        sample.image, why = (images.resolve(sid, name=name or sid, level=level) if url
                             else (None, "no image: no image_path"))
        yield where, sample, why


# --- MMSearch-Plus -----------------------------------------------------------------------------


def _key(canary: str, length: int) -> bytes:
    digest = hashlib.sha256(canary.encode()).digest()
    return (digest * (length // len(digest) + 1))[:length]


def decrypt(text: str, canary: str) -> str:
    """MMSearch-Plus's text encryption undone: base64, then XOR with the canary's SHA-256."""
    raw = base64.b64decode(text, validate=True)
    return bytes(a ^ b for a, b in zip(raw, _key(canary, len(raw)))).decode("utf-8")


def encrypt(text: str, canary: str) -> str:
    """The inverse of :func:`decrypt` (for fixtures and round-trip tests)."""
    raw = text.encode("utf-8")
    return base64.b64encode(bytes(a ^ b for a, b in zip(raw, _key(canary, len(raw))))).decode()


def _is_cipher(question: str, canary: str | None) -> bool:
    """A row is encrypted when its question has no space and decrypts to UTF-8 text."""
    if canary is None or " " in question.strip():
        return False
    try:
        decrypt(question.strip(), canary)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return True


@benchmark_loader("mmsearch_plus", "MMSearch-Plus file")
def load_mmsearch_plus(
    p: Path,
    col: Collector,
    *,
    canary: str | None = "MMSearch-Plus",
    cache_dir: str | None = None,
) -> Rows:
    """Load MMSearch-Plus, decrypting its text fields (``canary=None``: rows are plain text)."""
    store = ImageStore(cache_dir or default_cache_dir("mmsearch_plus"))
    for n, (where, row) in enumerate(iter_table(p, col, "MMSearch-Plus file")):
        question = row.get("question")
        if not isinstance(question, str) or not question.strip():
            col.bad(where, "no question")
            continue
        secret = _is_cipher(question, canary)
        try:
            answers = str_list([decrypt(a, canary) if secret else a
                                for a in str_list(row.get("answer"))])
        except (binascii.Error, ValueError, UnicodeDecodeError):
            col.bad(where, "answer does not decrypt")
            continue
        count = int(row.get("num_images") or 5)
        paths = [store.save(row[f"img_{k}"])[0] for k in range(1, count + 1)
                 if row.get(f"img_{k}") is not None]
        sample = Sample(
            id=str(row.get("id") or row.get("sample_id") or n),
            question=(decrypt(question.strip(), canary) if secret else question).strip(),
            answers=answers,
            source="mmsearch_plus", split="test", category=_opt(row.get("category")),
            search_required=True,
            metadata={"images": [x for x in paths if x], "difficulty": row.get("difficulty"),
                      "subtask": row.get("subtask")},
        )
        sample.image = next((x for x in paths if x), None)
        yield where, sample, None if sample.image else "no image: no readable img_1..img_5"
