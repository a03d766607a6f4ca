"""Dataset writers: the SFT set from distilled trajectories, and RL prompts for TRL and veRL.

SFT (:func:`write_sft`) — one row per kept trajectory:

- ``sft.jsonl``: ``{id, question, answer, gold, category, search_required, source, images,
  messages, trajectory}``; ``messages`` is the neutral conversation (``user`` prompt with one
  ``<image>`` placeholder per image, then ``assistant`` turns and ``tool`` injections, which our
  chat template renders inline as ``<information>…</information>``); ``trajectory`` is the whole
  :class:`~deepmmsearch.types.Trajectory` record;
- ``sft.parquet``: the same columns (``trajectory`` as a JSON string) with ``images`` a list of
  Hugging Face ``Image`` values — paths (``images="path"``) or embedded bytes (``"bytes"``).
  ``datasets.load_dataset("parquet", data_files="sft.parquet")`` gives PIL images back.

RL prompts, from benchmark samples:

- :func:`write_trl` — a TRL GRPO dataset (parquet): ``prompt`` (conversational, the image as a
  ``{"type": "image"}`` block where the prompt has ``<image>``), ``images``, ``answers``,
  ``question``, ``id``, ``category``, ``search_required``, ``source``;
- :func:`write_verl` — veRL's RLHFDataset layout (parquet): ``data_source``, ``agent_name``,
  ``prompt`` (``[{role, content}]`` with one ``<image>`` per image), ``images``
  (``[{bytes, path}]``), ``reward_model`` (``{style, ground_truth, candidate_answers}``),
  ``extra_info`` (``{index, id, split, question, answers, category, search_required}``).

``prompt_style="agent"`` puts our E.1 initial prompt (``PromptSet.initial``) in the user turn;
``"question"`` only ``<image>`` + the question (when the rollout adds its own instructions).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepmmsearch import jsontext
from deepmmsearch.prompts import PromptSet, get_prompts
from deepmmsearch.protocol import IMAGE_PLACEHOLDER
from deepmmsearch.types import Sample, Trajectory


def _need_datasets():
    try:
        import datasets
    except ImportError:
        from deepmmsearch.registry import missing_dependency

        raise missing_dependency("datasets", "train", "writing Hugging Face datasets") from None
    return datasets


def _check_images(mode: str) -> None:
    if mode not in ("path", "bytes"):
        raise ValueError(f"images must be 'path' or 'bytes', got {mode!r}")


def _image_value(path: str, mode: str) -> dict[str, Any]:
    if mode == "bytes":
        return {"bytes": Path(path).read_bytes(), "path": Path(path).name}
    return {"bytes": None, "path": str(path)}


def _write_hf(rows: list[dict[str, Any]], path: Path, image_mode: str) -> None:
    datasets = _need_datasets()
    from datasets import Image, List

    ds = datasets.Dataset.from_list(rows)
    if rows:
        features = ds.features.copy()
        features["images"] = List(Image())
        ds = datasets.Dataset.from_list(
            [{**r, "images": [_image_value(p, image_mode) for p in r["images"]]} for r in rows],
            features=features)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))


# ---------------------------------------------------------------------------------------------
# SFT


def messages_view(traj: Trajectory) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in traj.messages()]


def sft_row(traj: Trajectory, sample: Sample, category: str | None) -> dict[str, Any]:
    images = [p for m in traj.prompt for p in m.images]
    return {
        "id": sample.id, "question": sample.question, "answer": traj.answer or "",
        "gold": list(sample.answers), "category": category or "",
        "search_required": bool(traj.tool_calls), "source": sample.source, "images": images,
        "messages": messages_view(traj), "trajectory": traj.to_dict(),
    }


def write_sft(rows: Sequence[dict[str, Any]], out_dir: str | Path, *, images: str = "path",
              parquet: bool = True) -> dict[str, str]:
    """Write ``sft.jsonl`` (+ ``sft.parquet``) from :func:`sft_row` rows; returns the paths."""
    _check_images(images)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"jsonl": str(out / "sft.jsonl")}
    tmp = out / "sft.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.writelines(jsontext.dumps(r) + "\n" for r in rows)
    tmp.replace(out / "sft.jsonl")
    if parquet:
        flat = [{**r, "trajectory": jsontext.dumps(r["trajectory"])} for r in rows]
        _write_hf(flat, out / "sft.parquet", images)
        paths["parquet"] = str(out / "sft.parquet")
    return paths


# ---------------------------------------------------------------------------------------------
# RL prompts


def prompt_text(sample: Sample, prompts: PromptSet, style: str = "agent") -> str:
    """The first user turn with one ``<image>`` placeholder when the sample has an image."""
    if style == "agent":
        text = prompts.initial.format(question=sample.question)
    elif style == "question":
        text = f"{IMAGE_PLACEHOLDER}{sample.question}"
    else:
        raise ValueError(f"prompt_style must be 'agent' or 'question', got {style!r}")
    return text if sample.image else text.replace(IMAGE_PLACEHOLDER, "")


def content_blocks(text: str) -> list[dict[str, Any]]:
    """``"a<image>b"`` → ``[{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}]``."""
    blocks: list[dict[str, Any]] = []
    for i, part in enumerate(text.split(IMAGE_PLACEHOLDER)):
        if i > 0:
            blocks.append({"type": "image"})
        if part:
            blocks.append({"type": "text", "text": part})
    return blocks


def _resolve(prompts: PromptSet | str) -> PromptSet:
    return prompts if isinstance(prompts, PromptSet) else get_prompts(prompts)


def trl_rows(samples: Sequence[Sample], prompts: PromptSet | str = "paper",
             prompt_style: str = "agent") -> list[dict[str, Any]]:
    ps = _resolve(prompts)
    return [{
        "id": s.id, "prompt": [{"role": "user", "content": content_blocks(prompt_text(s, ps, prompt_style))}],
        "images": [s.image] if s.image else [], "question": s.question, "answers": list(s.answers),
        "category": s.category or "", "search_required": s.search_required, "source": s.source,
    } for s in samples]


def write_trl(samples: Sequence[Sample], path: str | Path, *, prompts: PromptSet | str = "paper",
              prompt_style: str = "agent", images: str = "path") -> str:
    """A TRL (GRPO) prompt dataset as parquet; see the module docstring."""
    _check_images(images)
    _write_hf(trl_rows(samples, prompts, prompt_style), Path(path), images)
    return str(path)


def verl_rows(samples: Sequence[Sample], *, prompts: PromptSet | str = "paper",
              prompt_style: str = "agent", agent_name: str = "deepmmsearch_agent",
              data_source: str | None = None, reward_style: str = "model",
              images: str = "bytes") -> list[dict[str, Any]]:
    _check_images(images)
    ps = _resolve(prompts)
    rows = []
    for i, s in enumerate(samples):
        rows.append({
            "data_source": data_source or s.source or "deepmmsearch",
            "agent_name": agent_name,
            "prompt": [{"role": "user", "content": prompt_text(s, ps, prompt_style)}],
            "images": [_image_value(s.image, images)] if s.image else [],
            "reward_model": {"style": reward_style, "ground_truth": s.answers[0] if s.answers else "",
                             "candidate_answers": list(s.answers)},
            "extra_info": {"index": i, "id": s.id, "split": s.split or "", "question": s.question,
                           "answers": list(s.answers), "category": s.category or "",
                           "search_required": s.search_required},
        })
    return rows


def write_verl(samples: Sequence[Sample], path: str | Path, **kwargs: Any) -> str:
    """veRL parquet (RLHFDataset layout, ``<image>`` placeholders); kwargs as :func:`verl_rows`."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        from deepmmsearch.registry import missing_dependency

        raise missing_dependency("pyarrow", "train", "writing veRL parquet") from None
    rows = verl_rows(samples, **kwargs)
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([
        ("data_source", pa.string()), ("agent_name", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("images", pa.list_(image)),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string()),
                                    ("candidate_answers", pa.list_(pa.string()))])),
        ("extra_info", pa.struct([("index", pa.int64()), ("id", pa.string()), ("split", pa.string()),
                                  ("question", pa.string()), ("answers", pa.list_(pa.string())),
                                  ("category", pa.string()), ("search_required", pa.bool_())])),
    ])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), str(path))
    return str(path)
