"""Batched transformers generation for Qwen2.5-VL that stops right after an action's closing tag.

:func:`generate_batch` takes already encoded conversations (see ``conversation/encoding.py``), left-pads
them, runs ``model.generate`` once and returns, per row, the sampled ids cut at the stop point,
their sampler log-probs and why the row stopped:

- ``stop``: the decoded text now contains a stop string (``</text_search>``, ``</img_search>``,
  ``</answer>``); the tool runs before the model writes another token;
- ``eos``: the model wrote an end-of-turn token (kept in the ids, dropped from the text);
- ``length``: the row's token budget is spent.

Log-probs are those of the distribution actually sampled from (after token suppression,
temperature, top-k and top-p), recorded step by step without keeping all the scores in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    SuppressTokensLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from deepmmsearch.policies.base import truncate_at_stop


@dataclass
class RowOutput:
    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str  # "stop" | "eos" | "length"


@dataclass(frozen=True)
class SamplingOptions:
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    top_k: int = 0
    suppress_ids: tuple[int, ...] = ()
    eos_ids: tuple[int, ...] = ()
    pad_id: int = 0


class StopOnStrings(StoppingCriteria):
    """Per row: stop when the decoded tail holds a stop string, at eos, or at the row's budget."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_len: int,
                 budgets: Sequence[int], eos_ids: Sequence[int]) -> None:
        self.tokenizer = tokenizer
        self.stops = tuple(stops)
        self.prompt_len = prompt_len
        self.budgets = list(budgets)
        self.eos = set(eos_ids)
        longest = max((len(s) for s in self.stops), default=0)
        self.window = longest + 2  # a token holds at least one character
        self.ended: list[tuple[int, str] | None] = [None] * len(self.budgets)

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        gen = input_ids[:, self.prompt_len:]
        n = gen.shape[1]
        for b, ended in enumerate(self.ended):
            if ended is not None or n == 0:
                continue
            last = int(gen[b, -1])
            if last in self.eos:
                self.ended[b] = (n, "eos")
            elif self.stops and any(
                s in self.tokenizer.decode(gen[b, -self.window:].tolist(), skip_special_tokens=False)
                for s in self.stops
            ):
                self.ended[b] = (n, "stop")
            elif n >= self.budgets[b]:
                self.ended[b] = (n, "length")
        done = [e is not None for e in self.ended]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class LogprobRecorder(LogitsProcessor):
    """Last in the chain: keeps the log-softmax of the final scores and, one step later, the
    log-prob of the token that was picked. Call :meth:`finish` with the final sequences."""

    def __init__(self) -> None:
        self.prev: torch.Tensor | None = None
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prev is not None:
            self.steps.append(self.prev.gather(1, input_ids[:, -1:]).squeeze(1))
        self.prev = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def finish(self, sequences: torch.Tensor) -> torch.Tensor:
        """(batch, generated) log-probs of the generated tokens."""
        if self.prev is not None:
            self.steps.append(self.prev.gather(1, sequences[:, -1:]).squeeze(1))
            self.prev = None
        if not self.steps:
            return torch.zeros(sequences.shape[0], 0)
        return torch.stack(self.steps, dim=1).cpu()


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r):] = torch.tensor(list(r), dtype=torch.long)
            mask[i, width - len(r):] = 1
    return ids, mask


def generate_batch(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    budgets: Sequence[int],
    *,
    vision: dict[str, torch.Tensor] | None = None,
    image_token_id: int | None = None,
    stops: Sequence[str] = (),
    options: SamplingOptions = SamplingOptions(),
    extra_processors: Sequence[LogitsProcessor] = (),
) -> list[RowOutput]:
    """Generate a continuation for each prompt (token ids, image pads expanded); see module doc.

    ``vision`` holds ``pixel_values`` / ``image_grid_thw`` of every image of every row, in row
    order. ``extra_processors`` run first, then token suppression, temperature, top-k, top-p.
    """
    device = next(model.parameters()).device
    ids, mask = _left_pad(prompts, options.pad_id)
    ids, mask = ids.to(device), mask.to(device)
    inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
    if vision:
        dtype = next(model.parameters()).dtype
        inputs["pixel_values"] = vision["pixel_values"].to(device, dtype=dtype)
        inputs["image_grid_thw"] = vision["image_grid_thw"].to(device)
        inputs["mm_token_type_ids"] = (ids == image_token_id).long()
    sample = options.temperature > 0
    # Unset fields would be filled from the model's generation_config (e.g. Qwen's repetition
    # penalty), so every sampling field is set. Temperature/top-k/top-p run as our own processors
    # (below), before the log-prob recorder; the built-in ones are neutral. top_k=50 is the
    # library default (no warning in greedy mode); 0 switches it off when sampling.
    config = GenerationConfig(
        max_new_tokens=max(1, max(budgets)), do_sample=sample, temperature=1.0,
        top_k=0 if sample else 50, top_p=1.0, min_p=None, repetition_penalty=1.0, num_beams=1,
        eos_token_id=list(options.eos_ids) or None,
        pad_token_id=options.pad_id, no_repeat_ngram_size=0,
    )
    recorder = LogprobRecorder()
    processors = LogitsProcessorList(list(extra_processors))
    if options.suppress_ids:  # after any extra processor, so nothing can undo it
        processors.append(SuppressTokensLogitsProcessor(list(options.suppress_ids), device=device))
    if sample:
        if options.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(options.temperature))
        if options.top_k:
            processors.append(TopKLogitsWarper(options.top_k))
        if options.top_p < 1.0:
            processors.append(TopPLogitsWarper(options.top_p))
    processors.append(recorder)
    stop = StopOnStrings(tokenizer, stops, ids.shape[1], budgets, options.eos_ids)
    with torch.no_grad():
        seqs = model.generate(
            **inputs, generation_config=config, logits_processor=processors,
            stopping_criteria=StoppingCriteriaList([stop]),
        )
    gen = seqs[:, ids.shape[1]:].cpu()
    logps = recorder.finish(seqs)
    out = []
    for b in range(len(prompts)):
        n, why = stop.ended[b] or (gen.shape[1], "length")
        toks = gen[b, :n].tolist()
        text = tokenizer.decode(toks, skip_special_tokens=True)
        if why == "stop":  # the last token may carry characters past the tag (e.g. ">\n")
            text = truncate_at_stop(text, tuple(stops))[0]
        out.append(RowOutput(toks, [float(x) for x in logps[b, :n]], text, why))
    return out
