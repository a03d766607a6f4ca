"""Token ids and the loss / env mask of a conversation — one function for SFT and RL.

:func:`encode_segments` tokenises the segments of :mod:`~deepmmsearch.conversation.template`
**one segment at a time** (adjacent non-trainable segments merged), so a token never straddles
model text and injected text. Everything before the first model segment is the prompt; the
completion runs from the first to the last model segment, with ``env_mask`` 1 on model tokens and
0 on injected ones (``<information>`` blocks, follow-up prompts, corrective observations)::

    enc = encode_trajectory(tokenizer, traj, image_tokens=[4])           # SFT: text re-tokenised
    enc = encode_trajectory(tokenizer, traj, [4], model_ids=sampled_ids) # RL: the ids the model sampled
    enc.input_ids, enc.labels   # labels: -100 outside the model's tokens

The rollout (``HFPolicy.rollout_tokens``) and the SFT collator both call this function, so the
SFT loss mask equals the rollout ``env_mask`` token by token (tests/model/test_masking.py).
Pure: needs only a tokenizer with ``encode(text, add_special_tokens=False)`` and
``convert_tokens_to_ids``; no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from deepmmsearch.conversation.template import IMAGE_PAD, Segment, render_segments
from deepmmsearch.types import Message, Trajectory

IGNORE_INDEX = -100


class TokenizerLike(Protocol):
    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def convert_tokens_to_ids(self, token: str) -> int: ...


@dataclass
class EncodedConversation:
    """Token ids of one conversation, split at the first model token.

    ``env_mask[i]`` is 1 when ``completion_ids[i]`` was written by the model, 0 when injected.
    ``logprobs`` (when the model's sampled log-probs are known) has one float per completion
    token, 0.0 on injected tokens. ``images`` lists the image paths in token order.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    env_mask: list[int]
    logprobs: list[float] | None = None
    images: list[str] = field(default_factory=list)
    image_tokens: list[int] = field(default_factory=list)  # pad tokens per image

    @property
    def input_ids(self) -> list[int]:
        return self.prompt_ids + self.completion_ids

    @property
    def labels(self) -> list[int]:
        """SFT labels: the token where ``env_mask`` is 1, ``-100`` elsewhere (prompt included)."""
        return [IGNORE_INDEX] * len(self.prompt_ids) + [
            t if m else IGNORE_INDEX for t, m in zip(self.completion_ids, self.env_mask)
        ]

    @property
    def loss_mask(self) -> list[int]:
        """1 where the loss applies, over the whole sequence."""
        return [0] * len(self.prompt_ids) + list(self.env_mask)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_ids": self.prompt_ids, "completion_ids": self.completion_ids,
            "env_mask": self.env_mask, "logprobs": self.logprobs, "images": self.images,
        }


def _expand_pads(ids: list[int], pad_id: int, counts: list[int], start: int) -> tuple[list[int], int]:
    """Replace the image pads from image number ``start`` on with their token counts."""
    out: list[int] = []
    k = start
    for t in ids:
        if t == pad_id:
            if k >= len(counts):
                raise ValueError(f"more image placeholders than image token counts ({len(counts)})")
            out.extend([pad_id] * counts[k])
            k += 1
        else:
            out.append(t)
    return out, k


def _merge(segments: Sequence[Segment]) -> list[Segment]:
    """Merge adjacent non-trainable segments (fewer BPE boundaries, same ids for SFT and RL)."""
    out: list[Segment] = []
    for s in segments:
        if out and not s.trainable and not out[-1].trainable:
            last = out[-1]
            out[-1] = Segment(last.text + s.text, last.role, False, last.images + s.images)
        else:
            out.append(s)
    return out


def encode_segments(
    tokenizer: TokenizerLike,
    segments: Sequence[Segment],
    *,
    image_tokens: Sequence[int] = (),
    model_ids: Sequence[Sequence[int] | None] | None = None,
    model_logprobs: Sequence[Sequence[float] | None] | None = None,
    keep_tail: bool = False,
) -> EncodedConversation:
    """Token ids and env mask of rendered segments; see the module docstring.

    The completion ends with the last model segment unless ``keep_tail`` (a prompt for the next
    generation: the injected text after the last model turn is kept, with mask 0).

    ``image_tokens[k]`` is the number of pad tokens of the k-th image. ``model_ids[j]``, when
    given and not None, replaces the tokenisation of the j-th model segment (the ids the policy
    actually sampled); ``model_logprobs[j]`` are their sampler log-probs.
    """
    pad_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    merged = _merge(segments)
    trainable = [i for i, s in enumerate(merged) if s.trainable]
    first = trainable[0] if trainable else len(merged)
    last = trainable[-1] if trainable and not keep_tail else len(merged) - 1
    enc = EncodedConversation([], [], [], [])
    counts = list(image_tokens)
    k = j = 0  # next image, next model segment
    for i, seg in enumerate(merged[: last + 1]):
        enc.images.extend(seg.images)
        lp: Sequence[float] | None = None
        if seg.trainable:
            given = model_ids[j] if model_ids is not None and j < len(model_ids) else None
            ids = list(given) if given is not None else tokenizer.encode(seg.text, add_special_tokens=False)
            if model_logprobs is not None and j < len(model_logprobs):
                lp = model_logprobs[j]
            if lp is not None and len(lp) != len(ids):
                raise ValueError(f"model segment {j}: {len(lp)} log-probs for {len(ids)} tokens")
            if lp is None:
                enc.logprobs = None  # a model segment without log-probs: none are reported
            j += 1
        else:
            ids, k = _expand_pads(tokenizer.encode(seg.text, add_special_tokens=False), pad_id, counts, k)
        if i < first:
            enc.prompt_ids.extend(ids)
            continue
        enc.completion_ids.extend(ids)
        enc.env_mask.extend([int(seg.trainable)] * len(ids))
        if enc.logprobs is not None:
            enc.logprobs.extend(lp if lp is not None else [0.0] * len(ids))
    if k != len(enc.images):
        raise ValueError(f"{len(enc.images)} images but {k} image placeholders")
    if model_logprobs is None or not trainable:
        enc.logprobs = None
    enc.image_tokens = counts[:k]
    return enc


def encode_messages(
    tokenizer: TokenizerLike,
    messages: Sequence[Message],
    *,
    image_tokens: Sequence[int] = (),
    add_generation_prompt: bool = True,
    model_ids: Sequence[Sequence[int] | None] | None = None,
    model_logprobs: Sequence[Sequence[float] | None] | None = None,
) -> EncodedConversation:
    """:func:`encode_segments` of ``render_segments(messages)``."""
    segs = render_segments(messages, add_generation_prompt=add_generation_prompt)
    return encode_segments(
        tokenizer, segs, image_tokens=image_tokens, model_ids=model_ids, model_logprobs=model_logprobs
    )


def encode_trajectory(
    tokenizer: TokenizerLike,
    trajectory: Trajectory,
    image_tokens: Sequence[int] = (),
    *,
    model_ids: Sequence[Sequence[int] | None] | None = None,
    model_logprobs: Sequence[Sequence[float] | None] | None = None,
) -> EncodedConversation:
    """A finished episode as (prompt, completion, env_mask): SFT labels and RL rollout tokens."""
    return encode_messages(
        tokenizer, trajectory.messages(), image_tokens=image_tokens,
        model_ids=model_ids, model_logprobs=model_logprobs,
    )


def mask_spans(text_segments: Sequence[Segment]) -> list[tuple[int, int, bool]]:
    """Character spans ``(start, end, trainable)`` of the rendered text (for inspection/plots)."""
    out, pos = [], 0
    for s in text_segments:
        out.append((pos, pos + len(s.text), s.trainable))
        pos += len(s.text)
    return out
