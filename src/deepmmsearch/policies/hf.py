"""``hf``: a local transformers Qwen-VL as the policy (a hub id or a model directory; any family
of conversation/families.py, picked by the checkpoint's model_type).

Config (``agent.policy``)::

    policy: {name: hf, model: runs/sft/model}                      # merged SFT output, or
    policy: {name: hf, model: Qwen/Qwen2.5-VL-7B-Instruct, device: cuda, dtype: bfloat16,
             temperature: 0.7, top_p: 0.95, max_pixels: 1003520}

Each turn the conversation so far — the user prompt with its image, the model's earlier turns and
every injected ``<information>`` block — is rendered with our chat template
(``conversation/template.py``) and encoded segment by segment (``conversation/encoding.py``); the model's
earlier turns are encoded with the ids it actually sampled. Generation stops right after the
closing tag of an action so that the tool runs before the model goes on. ``<|image_pad|>``,
``<|video_pad|>``, ``<|vision_start|>`` and ``<|vision_end|>`` are never generated.

Concurrent episodes (``run_episodes``) are batched: requests that arrive together are generated
as one left-padded batch of up to ``max_batch_size`` rows.

For RL, :meth:`HFPolicy.rollout_tokens` turns a finished trajectory into
``(prompt_ids, completion_ids, env_mask, logprobs)`` — the same function that gives the SFT labels.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deepmmsearch.conversation.encoding import EncodedConversation, encode_segments
from deepmmsearch.conversation.template import (
    IMAGE_PAD,
    VIDEO_PAD,
    VISION_END,
    VISION_START,
    render_segments,
)
from deepmmsearch.policies.base import Generation, GenerationRequest
from deepmmsearch.registry import ConfigError
from deepmmsearch.types import Message, Trajectory

log = logging.getLogger(__name__)

SUPPRESSED = (IMAGE_PAD, VIDEO_PAD, VISION_START, VISION_END)


@dataclass
class TurnTokens:
    """What the policy sampled for one turn (kept for the next prompt and for RL)."""

    text: str
    token_ids: list[int]
    logprobs: list[float]


@dataclass
class _Pending:
    encoded: EncodedConversation
    budget: int
    stops: tuple[str, ...]
    future: asyncio.Future
    request: GenerationRequest


class HFPolicy:
    """See the module docstring. ``temperature`` 0 is greedy decoding."""

    name = "hf"

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        max_new_tokens: int | None = None,
        seed: int | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        revision: str | None = None,
        attn_implementation: str | None = None,
        max_batch_size: int = 8,
        batch_wait_s: float = 0.002,
        torch_threads: int | None = None,
        keep_episodes: int = 4096,
    ) -> None:
        if temperature < 0 or not 0 < top_p <= 1 or top_k < 0 or max_batch_size < 1:
            raise ConfigError("hf policy: need temperature >= 0, 0 < top_p <= 1, top_k >= 0, "
                              "max_batch_size >= 1")
        from deepmmsearch.models.loading import load_model_and_processor

        if torch_threads:
            import torch

            torch.set_num_threads(int(torch_threads))
        mdl, proc = load_model_and_processor(
            model, device=device, dtype=dtype, min_pixels=min_pixels, max_pixels=max_pixels,
            revision=revision, attn_implementation=attn_implementation,
        )
        self._setup(mdl, proc, temperature=temperature, top_p=top_p, top_k=top_k,
                    max_new_tokens=max_new_tokens, seed=seed, max_batch_size=max_batch_size,
                    batch_wait_s=batch_wait_s, keep_episodes=keep_episodes)
        self.source = str(model)

    @classmethod
    def from_objects(cls, model: Any, processor: Any, **options: Any) -> HFPolicy:
        """A policy around an in-memory model (e.g. the one GRPO is training)."""
        self = cls.__new__(cls)
        self._setup(model, processor, **options)
        self.source = "<in-memory>"
        return self

    def _setup(self, model: Any, processor: Any, *, temperature: float = 0.0, top_p: float = 1.0,
               top_k: int = 0, max_new_tokens: int | None = None, seed: int | None = None,
               max_batch_size: int = 8, batch_wait_s: float = 0.002, keep_episodes: int = 4096,
               extra_processors: Sequence[Any] = ()) -> None:
        from deepmmsearch.models.generation import SamplingOptions
        from deepmmsearch.models.processor import ImageEncoder

        if seed is not None:
            import torch

            torch.manual_seed(seed)
        self.model, self.processor = model, processor
        self.tokenizer = processor.tokenizer
        self.images = ImageEncoder(processor.image_processor)
        ids = self.tokenizer.convert_tokens_to_ids
        eos = {ids(self.tokenizer.eos_token)}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos |= set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
        unk = getattr(self.tokenizer, "unk_token_id", None)
        self.options = SamplingOptions(
            temperature=temperature, top_p=top_p, top_k=top_k,
            suppress_ids=tuple(i for i in (ids(t) for t in SUPPRESSED) if i is not None and i != unk),
            eos_ids=tuple(sorted(eos)), pad_id=self.tokenizer.pad_token_id or 0,
        )
        self.image_token_id = ids(IMAGE_PAD)
        self.max_new_tokens = max_new_tokens
        self.max_batch_size = max_batch_size
        self.batch_wait_s = batch_wait_s
        self.keep_episodes = keep_episodes
        self.extra_processors = list(extra_processors)
        self._records: OrderedDict[str, dict[int, TurnTokens]] = OrderedDict()
        self.batch_sizes: Counter[int] = Counter()  # how many generate calls had each batch size
        self._queue: list[_Pending] = []
        self._worker: asyncio.Task | None = None

    # -- encoding ------------------------------------------------------------------------------

    def _turn_ids(self, episode_id: str, messages: Sequence[Message]) -> list[TurnTokens | None]:
        """The sampled tokens of each assistant message, when this policy wrote it."""
        rec = self._records.get(episode_id, {})
        out: list[TurnTokens | None] = []
        k = 0
        for m in messages:
            if m.role == "assistant":
                got = rec.get(k)
                out.append(got if got is not None and got.text == m.content else None)
                k += 1
        return out

    def encode(self, messages: Sequence[Message], episode_id: str = "", *,
               keep_tail: bool = True) -> EncodedConversation:
        """Prompt + completion ids of a conversation, with this policy's sampled ids reused.

        ``keep_tail`` keeps the text injected after the last model turn (a generation prompt).
        """
        segs = render_segments(messages, add_generation_prompt=True)
        paths = [p for s in segs for p in s.images]
        turns = self._turn_ids(episode_id, messages) if episode_id else []
        return encode_segments(
            self.tokenizer, segs, image_tokens=self.images.token_counts(paths),
            model_ids=[t.token_ids if t else None for t in turns] or None,
            model_logprobs=[t.logprobs if t else None for t in turns] or None, keep_tail=keep_tail,
        )

    def rollout_tokens(self, trajectory: Trajectory, *, forget: bool = True) -> EncodedConversation:
        """``(prompt_ids, completion_ids, env_mask, logprobs)`` of a finished episode.

        Model turns use the ids this policy sampled (mask 1, with their log-probs); injected text
        is tokenised separately (mask 0). Turns it did not write are re-tokenised and then no
        log-probs are reported. ``forget`` drops the episode's records afterwards.
        """
        enc = self.encode(trajectory.messages(), trajectory.id, keep_tail=False)
        if forget:
            self._records.pop(trajectory.id, None)
        return enc

    def _remember(self, episode_id: str, turn: int, tt: TurnTokens) -> None:
        if not episode_id:
            return
        rec = self._records.setdefault(episode_id, {})
        rec[turn] = tt
        self._records.move_to_end(episode_id)
        while len(self._records) > self.keep_episodes:
            self._records.popitem(last=False)

    # -- generation ----------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> Generation:
        enc = self.encode(request.messages, request.episode_id)
        budget = request.max_new_tokens
        if self.max_new_tokens:
            budget = min(budget, self.max_new_tokens)
        loop = asyncio.get_running_loop()
        item = _Pending(enc, max(1, budget), tuple(request.stop), loop.create_future(), request)
        self._queue.append(item)
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._worker = loop.create_task(self._drain())
        return await item.future

    async def _drain(self) -> None:
        while self._queue:
            await asyncio.sleep(self.batch_wait_s)  # let concurrent episodes join the batch
            batch = self._take_batch()
            try:
                rows = await asyncio.to_thread(self._run, batch)
            except Exception as exc:  # noqa: BLE001 - each episode records it as a policy error
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            self._record(batch, rows)
            for p, gen in zip(batch, rows):
                if not p.future.done():
                    p.future.set_result(gen)

    def _take_batch(self) -> list[_Pending]:
        first = self._queue[0]
        batch = [p for p in self._queue if p.stops == first.stops][: self.max_batch_size]
        for p in batch:
            self._queue.remove(p)
        return batch

    def _run(self, batch: list[_Pending]) -> list[Generation]:
        from deepmmsearch.models.generation import generate_batch

        paths = [p for item in batch for p in item.encoded.images]
        self.batch_sizes[len(batch)] += 1
        rows = generate_batch(
            self.model, self.tokenizer, [b.encoded.input_ids for b in batch],
            [b.budget for b in batch], vision=self.images.encode(paths) if paths else None,
            image_token_id=self.image_token_id, stops=batch[0].stops, options=self.options,
            extra_processors=self.extra_processors,
        )
        return [Generation(r.text, n_tokens=len(r.token_ids), token_ids=r.token_ids,
                           logprobs=r.logprobs, finish_reason=r.finish_reason) for r in rows]

    def _record(self, batch: list[_Pending], gens: list[Generation]) -> None:
        for item, gen in zip(batch, gens):
            req = item.request
            self._remember(req.episode_id, _assistant_count(req.messages),
                           TurnTokens(gen.text, list(gen.token_ids or []), list(gen.logprobs or [])))

    def generate_sync(self, request: GenerationRequest) -> Generation:
        """One generation without an event loop (scripts, notebooks)."""
        enc = self.encode(request.messages, request.episode_id)
        fut: Any = None
        budget = min(request.max_new_tokens, self.max_new_tokens or request.max_new_tokens)
        batch = [_Pending(enc, max(1, budget), tuple(request.stop), fut, request)]
        gens = self._run(batch)
        self._record(batch, gens)
        return gens[0]


def _assistant_count(messages: Sequence[Message]) -> int:
    return sum(m.role == "assistant" for m in messages)
