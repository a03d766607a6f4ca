"""The paper's Table 2 sets — general VQA without search — read as released.

Multiple-choice questions get their options written into the question text (in our words: the
options one a line, then "Answer with the letter of the correct option."), because the direct
workflow sends only ``Sample.question``; the options also stay in ``Sample.choices`` and the gold
letter in ``metadata["answer_letter"]``.

- ``mmbench``: MMBench (Liu et al., 2023) TSV as released with VLMEvalKit / OpenCompass
  (``MMBench_DEV_EN.tsv`` ...): ``index``, ``question``, ``hint``, ``A`` ... ``E``, ``answer``
  (a letter), ``category``, ``l2-category``, ``image`` (base64 — or, in VLMEvalKit's files, the
  ``index`` of the row whose image it shares), ``source``, ``split``. Circular evaluation: a
  question passes only when every rotation of its options is answered right; rows whose index
  is the same modulo 1,000,000 are one group (the official circular files hold the rotations),
  and ``circular=true`` (default) adds the rotations a file lacks. Test-split answers are
  private (rows without ``answer`` load with ``require_answers`` off, unscored).
- ``ai2d``: AI2D (Kembhavi et al., 2016) as lmms-eval reads it (Hugging Face ``lmms-lab/ai2d``):
  ``question``, ``options`` (a list), ``answer`` (the 0-based index, as text), ``image``.
- ``docvqa``: DocVQA (Mathew et al., 2021): the RRC JSON ``{"data": [{questionId, question,
  image: "documents/....png", docId, answers}]}`` (images relative to the JSON's folder, or
  ``image_root``), or the Hugging Face ``lmms-lab/DocVQA`` parquet (``image`` as bytes). Test
  answers are private. Official metric: ANLS. ``infovqa`` (InfographicVQA, the paper's seventh
  Table 2 set) reads the same layout.
- ``ocrbench``: OCRBench (Liu et al., 2024): ``OCRBench.json``, a list of ``{dataset_name, id,
  image_path, question, answers (text or list), type}``, or the parquet / TSV copies with
  ``dataset``, ``question``, ``answer(s)``, ``question_type``, ``image``.
- ``mathvista``: MathVista (Lu et al., 2024) ``testmini``: JSON object keyed by ``pid`` (or
  rows) with ``question``, ``image`` (``images/1.jpg``), ``choices``, ``unit``, ``precision``,
  ``answer``, ``question_type`` (``multi_choice`` / ``free_form``), ``answer_type`` (``text``,
  ``integer``, ``float``, ``list``), ``query`` (the question with its hint; used as the question)
  and ``metadata``.
- ``mmvet``: MM-Vet (Yu et al., 2023): ``mm-vet.json`` keyed by id (``v1_0`` ...) with
  ``imagename``, ``question``, ``answer`` (``<AND>`` / ``<OR>`` mark several parts) and
  ``capability``; images in ``images/`` beside it (or ``image_root``). Scored by an LLM grader
  (``llm`` judge, ``mode: mmvet``) that gives each answer a score between 0 and 1.
"""

from __future__ import annotations

import math
import re
import string
from pathlib import Path
from typing import Any

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

LETTERS = string.ascii_uppercase
CIRCULAR_STEP = 1_000_000


def with_options(question: str, options: list[str], hint: str = "") -> str:
    """The question text of a multiple-choice sample: hint, question, lettered options, and an
    instruction to answer with a letter (our wording)."""
    lines = [hint.strip()] if hint and hint.strip() else []
    lines.append(question.strip())
    lines += [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    lines.append("Answer with the letter of the correct option.")
    return "\n".join(lines)


def _image(value: Any, store: ImageStore, files: ImageResolver) -> tuple[str | None, str | None]:
    if isinstance(value, dict) and not value.get("bytes") and value.get("path"):
        value = value["path"]
    if isinstance(value, str) and len(value) < 512 and re.search(r"\.\w{3,4}$", value):
        return files.resolve_path(value)
    return store.save(value)


def _store_and_files(dataset: str, cache_dir: str | None, image_root: str | None, p: Path,
                     check: bool) -> tuple[ImageStore, ImageResolver]:
    return (ImageStore(cache_dir or default_cache_dir(dataset)),
            ImageResolver(image_root or p.parent, check=check))


# --- MMBench -----------------------------------------------------------------------------------


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and value.strip().lower() in ("", "nan", "none"))


@benchmark_loader("mmbench", "MMBench TSV")
def load_mmbench(
    p: Path,
    col: Collector,
    *,
    circular: bool = True,
    cache_dir: str | None = None,
    image_root: str | None = None,
    check_images: bool = True,
) -> Rows:
    """Load an MMBench TSV, with circular groups (see the module docstring)."""
    store, files = _store_and_files("mmbench", cache_dir, image_root, p, check_images)
    rows = list(iter_table(p, col, "MMBench TSV"))
    by_index = {str(r.get("index")): r for _, r in rows}
    present = {int(float(r["index"])) for _, r in rows if _is_int(r.get("index"))}
    col.require_answers = any(not _nan(r.get("answer")) for _, r in rows)
    for where, row in rows:
        if not _is_int(row.get("index")) or _nan(row.get("question")):
            col.bad(where, "no index or question")
            continue
        options = [str(row[k]).strip() for k in LETTERS[:8] if k in row and not _nan(row[k])]
        letter = "" if _nan(row.get("answer")) else str(row["answer"]).strip().upper()
        if len(options) < 2 or (letter and letter not in LETTERS[:len(options)]):
            col.bad(where, "options or answer letter unusable")
            continue
        image = row.get("image")
        if isinstance(image, str) and image.strip().isdigit() and image.strip() in by_index:
            image = by_index[image.strip()].get("image")  # VLMEvalKit: the image of that index
        path, why = _image(image, store, files)
        index = int(float(row["index"]))
        shifts = range(len(options)) if circular and index < CIRCULAR_STEP else range(1)
        for k in shifts:
            if k and index + k * CIRCULAR_STEP in present:
                continue  # the file holds this rotation itself
            sample = _mmbench_sample(row, index + k * CIRCULAR_STEP, options, letter, k)
            sample.image = path
            yield where, sample, why


def _is_int(value: Any) -> bool:
    try:
        return float(value) == int(float(value))
    except (TypeError, ValueError):
        return False


def _mmbench_sample(row: dict[str, Any], index: int, options: list[str], letter: str,
                    shift: int) -> Sample:
    rotated = options[shift:] + options[:shift]
    gold = ""
    if letter:
        text = options[LETTERS.index(letter)]
        gold = LETTERS[rotated.index(text)]
    hint = "" if _nan(row.get("hint")) else str(row["hint"])
    return Sample(
        id=str(index), question=with_options(str(row["question"]), rotated, hint),
        answers=[gold, rotated[LETTERS.index(gold)]] if gold else [], question_type="multi_choice",
        source="mmbench", split=None if _nan(row.get("split")) else str(row["split"]),
        choices=rotated, category=None if _nan(row.get("category")) else str(row["category"]),
        search_required=False,
        metadata={"answer_letter": gold, "circular_group": str(index % CIRCULAR_STEP),
                  "l2_category": None if _nan(row.get("l2-category")) else row.get("l2-category")},
    )


# --- AI2D --------------------------------------------------------------------------------------


@benchmark_loader("ai2d", "AI2D file")
def load_ai2d(p: Path, col: Collector, *, cache_dir: str | None = None,
              image_root: str | None = None, check_images: bool = True) -> Rows:
    """Load AI2D multiple-choice questions (lmms-lab/ai2d layout)."""
    store, files = _store_and_files("ai2d", cache_dir, image_root, p, check_images)
    for n, (where, row) in enumerate(iter_table(p, col, "AI2D file")):
        options = [str(o) for o in row.get("options") or []]
        try:
            k = int(str(row.get("answer")).strip())
            gold = options[k]
        except (ValueError, IndexError):
            col.bad(where, "answer is not an option index")
            continue
        if not isinstance(row.get("question"), str) or len(options) < 2:
            col.bad(where, "no question or options")
            continue
        sample = Sample(id=str(row.get("id", n)), question=with_options(row["question"], options),
                        answers=[LETTERS[k], gold], question_type="multi_choice", source="ai2d",
                        split="test", choices=options, search_required=False,
                        metadata={"answer_letter": LETTERS[k]})
        sample.image, why = _image(row.get("image"), store, files)
        yield where, sample, why


# --- DocVQA ------------------------------------------------------------------------------------


def _doc_rows(source: str, p: Path, col: Collector, cache_dir: str | None,
              image_root: str | None, check_images: bool) -> Rows:
    store, files = _store_and_files(source, cache_dir, image_root, p, check_images)
    col.require_answers = "test" not in p.name
    for n, (where, row) in enumerate(iter_table(p, col, f"{source} file")):
        if not isinstance(row.get("question"), str):
            col.bad(where, "no question")
            continue
        sample = Sample(id=str(row.get("questionId", n)), question=row["question"].strip(),
                        answers=str_list(row.get("answers")), source=source,
                        split=str(row.get("data_split") or p.stem), search_required=False,
                        metadata={"doc_id": row.get("docId"),
                                  "question_types": row.get("question_types")})
        sample.image, why = _image(row.get("image"), store, files)
        yield where, sample, why


@benchmark_loader("docvqa", "DocVQA file")
def load_docvqa(p: Path, col: Collector, *, cache_dir: str | None = None,
                image_root: str | None = None, check_images: bool = True) -> Rows:
    """Load DocVQA (RRC JSON or lmms-lab parquet)."""
    return _doc_rows("docvqa", p, col, cache_dir, image_root, check_images)


@benchmark_loader("infovqa", "InfographicVQA file")
def load_infovqa(p: Path, col: Collector, *, cache_dir: str | None = None,
                 image_root: str | None = None, check_images: bool = True) -> Rows:
    """Load InfographicVQA (the DocVQA layout: RRC JSON or lmms-lab parquet)."""
    return _doc_rows("infovqa", p, col, cache_dir, image_root, check_images)


# --- OCRBench ----------------------------------------------------------------------------------


@benchmark_loader("ocrbench", "OCRBench file")
def load_ocrbench(p: Path, col: Collector, *, cache_dir: str | None = None,
                  image_root: str | None = None, check_images: bool = True) -> Rows:
    """Load OCRBench (``OCRBench.json`` or a parquet/TSV copy)."""
    store, files = _store_and_files("ocrbench", cache_dir, image_root, p, check_images)
    for n, (where, row) in enumerate(iter_table(p, col, "OCRBench file")):
        if not isinstance(row.get("question"), str):
            col.bad(where, "no question")
            continue
        gold = row.get("answers", row.get("answer"))
        if isinstance(gold, str) and gold.startswith("["):
            import ast

            try:
                gold = ast.literal_eval(gold)  # TSV copies store the list as its repr
            except (ValueError, SyntaxError):
                pass
        raw = [gold] if isinstance(gold, str) else list(gold or [])
        sample = Sample(id=str(row.get("id", row.get("index", n))), question=row["question"].strip(),
                        answers=str_list(raw), source="ocrbench", search_required=False,
                        question_type=_first(row, "type", "question_type"),
                        category=_first(row, "dataset_name", "dataset"),
                        metadata={"raw_answers": [str(a) for a in raw if a is not None]})
        sample.image, why = _image(row.get("image_path", row.get("image")), store, files)
        yield where, sample, why


def _first(row: dict[str, Any], *keys: str) -> str | None:
    return next((str(row[k]) for k in keys if not _nan(row.get(k))), None)


# --- MathVista ---------------------------------------------------------------------------------


def _keyed_rows(p: Path, col: Collector, what: str, id_key: str):
    """A JSON object keyed by id (MathVista, MM-Vet) as rows; other files through iter_table."""
    if p.suffix.lower() != ".json":
        yield from iter_table(p, col, what)
        return
    data = read_json(p, what)
    if isinstance(data, list):
        data = {str(r.get(id_key, i)) if isinstance(r, dict) else str(i): r
                for i, r in enumerate(data)}
    if not isinstance(data, dict):
        raise DatasetError(f"{what} {p}: expected a JSON object keyed by id")
    for key, row in data.items():
        col.report.rows += 1
        if isinstance(row, dict):
            yield f"{p.name}[{key}]", {id_key: key, **row}
        else:
            col.bad(f"{p.name}[{key}]", "not a JSON object")


@benchmark_loader("mathvista", "MathVista file")
def load_mathvista(p: Path, col: Collector, *, cache_dir: str | None = None,
                   image_root: str | None = None, check_images: bool = True) -> Rows:
    """Load MathVista (see the module docstring)."""
    store, files = _store_and_files("mathvista", cache_dir, image_root, p, check_images)
    col.require_answers = "test" not in p.name or "testmini" in p.name
    for where, row in _keyed_rows(p, col, "MathVista file", "pid"):
        question = row.get("query") or row.get("question")
        if not isinstance(question, str):
            col.bad(where, "no question")
            continue
        choices = [str(c) for c in row.get("choices") or []] or None
        meta = {k: row.get(k) for k in ("unit", "precision", "answer_type", "question")}
        meta["metadata"] = row.get("metadata")
        sample = Sample(id=str(row["pid"]), question=question.strip(),
                        answers=str_list(row.get("answer")), source="mathvista",
                        question_type=row.get("question_type"), split="testmini", choices=choices,
                        search_required=False, metadata=meta)
        sample.image, why = _image(row.get("decoded_image") or row.get("image"), store, files)
        yield where, sample, why


# --- MM-Vet ------------------------------------------------------------------------------------


@benchmark_loader("mmvet", "MM-Vet file")
def load_mmvet(p: Path, col: Collector, *, image_root: str | None = None,
               cache_dir: str | None = None, check_images: bool = True) -> Rows:
    """Load MM-Vet (see the module docstring)."""
    root = image_root or (p.parent / "images" if (p.parent / "images").is_dir() else p.parent)
    store, files = _store_and_files("mmvet", cache_dir, str(root), p, check_images)
    for where, row in _keyed_rows(p, col, "MM-Vet file", "id"):
        if not isinstance(row.get("question"), str):
            col.bad(where, "no question")
            continue
        caps = row.get("capability") or []
        sample = Sample(id=str(row["id"]), question=row["question"].strip(),
                        answers=str_list(row.get("answer")), source="mmvet", split="test",
                        category=",".join(caps) if isinstance(caps, list) else str(caps),
                        search_required=False, metadata={"capability": caps})
        sample.image, why = _image(row.get("imagename") or row.get("image"), store, files)
        yield where, sample, why
