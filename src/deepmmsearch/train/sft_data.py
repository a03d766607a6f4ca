"""SFT examples: distilled trajectories → token ids + labels, and the batch collator.

Rows of the input JSONL may be (1) ``data/export.py`` SFT rows (``{"trajectory": {...}, ...}``),
(2) bare :class:`~deepmmsearch.types.Trajectory` records, or (3) chat rows
``{"messages": [{role, content}], "images": [paths]}`` with ``<image>`` placeholders. Every row
is rendered with our chat template and encoded by ``conversation/encoding.py`` — the same function the
rollouts use — so the labels are the model's tokens and every injected ``<information>`` span
(and the prompt) is ``-100``. Relative image paths resolve against ``image_root`` (default: the
JSONL's folder), then the working directory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepmmsearch.conversation.encoding import IGNORE_INDEX, encode_messages
from deepmmsearch.conversation.template import IMAGE_PAD
from deepmmsearch.types import Message, Trajectory

log = logging.getLogger(__name__)


@dataclass
class SFTExample:
    id: str
    messages: list[Message]
    images: list[str]


def _resolve(path: str, roots: Sequence[Path]) -> str:
    p = Path(path)
    if p.is_absolute():
        return str(p)
    for root in roots:
        if (root / p).exists():
            return str(root / p)
    return str(p)


def _example(row: dict[str, Any], where: str) -> SFTExample:
    if "trajectory" in row:
        t = row["trajectory"]
        traj = Trajectory.from_dict(json.loads(t) if isinstance(t, str) else t)
        return SFTExample(traj.id, traj.messages(), [p for m in traj.prompt for p in m.images])
    if "turns" in row:
        traj = Trajectory.from_dict(row)
        return SFTExample(traj.id, traj.messages(), [p for m in traj.prompt for p in m.images])
    if "messages" in row:
        images = [str(p) for p in row.get("images", [])]
        msgs = [Message(m["role"], m["content"]) for m in row["messages"]]
        first_user = next((i for i, m in enumerate(msgs) if m.role == "user"), None)
        if images and first_user is None:
            raise ValueError(f"{where}: images but no user message")
        if images:
            m = msgs[first_user]
            msgs[first_user] = Message(m.role, m.content, tuple(images))
        return SFTExample(str(row.get("id", where)), msgs, images)
    raise ValueError(f"{where}: expected a 'trajectory', trajectory fields or 'messages'")


def read_examples(path: str | Path, *, image_root: str | None = None,
                  limit: int | None = None) -> list[SFTExample]:
    """Read SFT examples from a JSONL file; bad rows are errors that name the line."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"SFT data not found: {p}")
    roots = [Path(image_root)] if image_root else []
    roots += [p.parent, Path.cwd()]
    out: list[SFTExample] = []
    with open(p, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{p}:{i}"
            try:
                ex = _example(json.loads(line), where)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{where}: {exc}") from None
            images = [_resolve(x, roots) for x in ex.images]
            msgs = [Message(m.role, m.content, tuple(_resolve(x, roots) for x in m.images))
                    for m in ex.messages]
            out.append(SFTExample(ex.id, msgs, images))
            if limit is not None and len(out) >= limit:
                break
    return out


def example_texts(examples: Sequence[SFTExample]) -> Iterator[str]:
    """All message texts (to train a tokenizer from scratch)."""
    for ex in examples:
        for m in ex.messages:
            yield m.content


def encode_examples(examples: Sequence[SFTExample], tokenizer: Any, images: Any, *,
                    max_length: int | None = None) -> list[dict[str, Any]]:
    """Rows ``{id, input_ids, labels, image_paths}``; unusable examples are skipped with a warning."""
    rows, skipped = [], 0
    for ex in examples:
        try:
            counts = images.token_counts(ex.images)
            enc = encode_messages(tokenizer, ex.messages, image_tokens=counts)
        except (ValueError, OSError) as exc:
            log.warning("skipping SFT example %s: %s", ex.id, exc)
            skipped += 1
            continue
        ids, labels = enc.input_ids, enc.labels
        if max_length is not None and len(ids) > max_length:
            if len(enc.prompt_ids) >= max_length:
                log.warning("skipping SFT example %s: its prompt alone has %d tokens (max_length %d)",
                            ex.id, len(enc.prompt_ids), max_length)
                skipped += 1
                continue
            ids, labels = ids[:max_length], labels[:max_length]  # cut the end, never an image
        if all(x == IGNORE_INDEX for x in labels):
            log.warning("skipping SFT example %s: no model tokens", ex.id)
            skipped += 1
            continue
        rows.append({"id": ex.id, "input_ids": ids, "labels": labels, "image_paths": enc.images})
    if skipped:
        log.warning("skipped %d of %d SFT examples", skipped, len(examples))
    return rows


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing: indices of rows grouped into bins of at most ``capacity`` tokens
    (a row longer than ``capacity`` gets a bin of its own). Bins keep their rows in input order.

    >>> pack_rows([120, 60, 200, 70, 130], 200)
    [[2], [3, 4], [0, 1]]
    """
    bins: list[list[int]] = []
    free: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda j: (-lengths[j], j)):
        n = lengths[i]
        for b, room in enumerate(free):
            if n <= room:
                bins[b].append(i)
                free[b] -= n
                break
        else:
            bins.append([i])
            free.append(capacity - n)
    return [sorted(b) for b in bins]


class TrajectoryCollator:
    """Right-pads ``input_ids`` / ``labels``, builds the attention mask, ``mm_token_type_ids``
    and the images' ``pixel_values`` / ``image_grid_thw``.

    ``rope_index`` (the model's ``get_rope_index``) turns on **packing**: the batch's rows are
    packed first-fit into as few rows as possible, each no wider than the longest row, and the
    batch carries ``position_ids`` of shape ``(4, rows, width)`` — the text positions, restarting
    at 0 for every packed example, then the three M-RoPE rows — and no ``attention_mask``, which
    makes transformers build a block-diagonal causal mask (no example sees another). The same
    examples and labels per step as without packing, fewer padded positions. The first token of
    every example is prompt (label ``-100``), so no loss crosses an example boundary.
    """

    def __init__(self, tokenizer: Any, images: Any, pad_to_multiple_of: int | None = None,
                 rope_index: Any = None) -> None:
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        self.images = images
        self.multiple = pad_to_multiple_of
        self.rope_index = rope_index

    def _round(self, width: int) -> int:
        return -(-width // self.multiple) * self.multiple if self.multiple else width

    def _width(self, rows: Sequence[dict[str, Any]]) -> int:
        return self._round(max(len(r["input_ids"]) for r in rows))

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = self._width(rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.as_tensor(r["input_ids"])
            labels[i, :n] = torch.as_tensor(r["labels"])
            mask[i, :n] = 1
        batch: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        paths = [p for r in rows for p in r["image_paths"]]
        if paths:
            batch.update(self.images.encode(paths))
            batch["mm_token_type_ids"] = (ids == self.image_token_id).long()
        if self.rope_index is None or len(rows) == 1:
            return batch
        return self._pack(rows, batch)

    def _pack(self, rows: Sequence[dict[str, Any]], batch: dict[str, Any]) -> dict[str, Any]:
        import torch

        ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
        lengths = [len(r["input_ids"]) for r in rows]
        if "image_grid_thw" in batch:
            pos, _ = self.rope_index(ids, mm_token_type_ids=batch["mm_token_type_ids"],
                                     image_grid_thw=batch["image_grid_thw"], attention_mask=mask)
        else:
            pos = (mask.cumsum(-1) - 1).clamp(min=0)[None].expand(3, -1, -1)
        bins = pack_rows(lengths, self._width(rows))
        width = self._round(max(sum(lengths[i] for i in b) for b in bins))
        p_ids = torch.full((len(bins), width), self.pad_id, dtype=torch.long)
        p_labels = torch.full((len(bins), width), IGNORE_INDEX, dtype=torch.long)
        p_pos = torch.zeros((4, len(bins), width), dtype=torch.long)
        for b, members in enumerate(bins):
            at = 0
            for i in members:
                n = lengths[i]
                p_ids[b, at:at + n] = ids[i, :n]
                p_labels[b, at:at + n] = labels[i, :n]
                p_pos[0, b, at:at + n] = torch.arange(n)
                p_pos[1:, b, at:at + n] = pos[:, i, :n]
                at += n
            p_pos[0, b, at:] = torch.arange(width - at)  # the padding: a segment of its own
        # no cache: with one, transformers would ignore the packing and let examples see each other
        out: dict[str, Any] = {"input_ids": p_ids, "labels": p_labels, "position_ids": p_pos,
                               "use_cache": False}
        if "image_grid_thw" in batch:
            # the images in the order their tokens now appear: row by row, example by example
            out.update(self.images.encode([p for m in bins for i in m for p in rows[i]["image_paths"]]))
            out["mm_token_type_ids"] = (p_ids == self.image_token_id).long()
        return out
