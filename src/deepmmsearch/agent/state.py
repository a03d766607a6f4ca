"""The episode state machine — pure: no I/O, no model, no network.

It takes the model's text and returns what should happen next::

    ep = Episode("Who designed this bridge?", "bridge.jpg", limits=Limits())
    step = ep.step("<reason>…</reason><img_search>the bridge</img_search>")
    # -> ToolRequest(kind="image_search", query="the bridge", ...)
    ep.observe(tool_call)            # appends <information>…</information> + follow-up prompt
    step = ep.step("<reason>…</reason><answer>Gustave Eiffel</answer>")
    # -> Finished(answer="Gustave Eiffel", stop_reason="answer")
    traj = ep.trajectory()

The same machine drives ``ask``, the web server, evaluation, distillation, TRL's ``rollout_func``
and the veRL agent loop. Budgets (tool calls, image searches, text searches, turns, response
tokens) come from :class:`~deepmmsearch.config.Limits`. A spent budget or an invalid turn
produces a corrective observation instead of a silent end.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, fields
from typing import Literal

from deepmmsearch.config import Limits
from deepmmsearch.conversation.messages import conversation, information_text
from deepmmsearch.prompts import PAPER, PromptSet
from deepmmsearch.protocol import IMAGE_PLACEHOLDER, parse_action, render_information
from deepmmsearch.types import Action, Box, Message, ToolCall, Trajectory, Turn


@dataclass(frozen=True)
class ToolRequest:
    """The engine asks the driver to run a tool."""

    kind: Literal["text_search", "image_search"]
    query: str  # the text query, or the referring expression (``<img>`` for the whole image)
    turn_index: int
    whole_image: bool = False
    box: Box | None = None  # self-grounding: the model wrote the box
    note: str | None = None  # e.g. the crop-search ablation turned a crop into the whole image


@dataclass(frozen=True)
class Finished:
    answer: str | None
    stop_reason: str


@dataclass(frozen=True)
class Corrective:
    """No tool ran; the engine injected ``observation`` and the policy should continue."""

    observation: str


Step = ToolRequest | Finished | Corrective


@dataclass
class Counters:
    tool_calls: int = 0
    image_searches: int = 0
    text_searches: int = 0
    invalid_in_a_row: int = 0
    invalid_total: int = 0
    response_tokens: int = 0


_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def is_source_url(url: str) -> bool:
    """True for an http(s) URL or a local index's ``doc:<id>``; False for javascript:, data:, ..."""
    scheme, sep, _ = (url or "").strip().partition(":")
    return bool(sep) and scheme.lower() in ("http", "https", "doc")


class Episode:
    """One question, one image, one budget; see the module docstring."""

    def __init__(
        self,
        question: str,
        image: str | None = None,
        *,
        limits: Limits | None = None,
        prompts: PromptSet = PAPER,
        episode_id: str | None = None,
        gold: list[str] | tuple[str, ...] = (),
        metadata: dict | None = None,
        require_reason: bool = True,
        prompt: list[Message] | None = None,
    ) -> None:
        self.question = question
        self.image = image
        self.limits = limits or Limits()
        self.prompts = prompts
        self.id = episode_id or uuid.uuid4().hex[:12]
        self.gold = list(gold)
        self.metadata = dict(metadata or {})
        self.require_reason = require_reason
        self.turns: list[Turn] = []
        self.counters = Counters()
        self.answer: str | None = None
        self.stop_reason: str | None = None
        self._pending: ToolRequest | None = None
        self.prompt = prompt if prompt is not None else self._initial_prompt()

    # -- prompt ------------------------------------------------------------------------------

    def _initial_prompt(self) -> list[Message]:
        text = self.prompts.initial.format(question=self.question)
        if self.image is None:
            return [Message("user", text.replace(IMAGE_PLACEHOLDER, ""))]
        return [Message("user", text, images=(self.image,))]

    def messages(self) -> list[Message]:
        """The conversation so far, ready for a policy (ends after the last injection)."""
        return conversation(self.prompt, self.turns)

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    @property
    def tokens_left(self) -> int:
        return max(0, self.limits.max_response_tokens - self.counters.response_tokens)

    def max_new_tokens(self) -> int:
        return max(1, min(self.limits.max_new_tokens_per_turn, self.tokens_left))

    # -- transitions -------------------------------------------------------------------------

    def step(self, model_text: str, n_tokens: int | None = None, latency_s: float = 0.0) -> Step:
        """Consume one model turn and say what happens next."""
        if self.done:
            raise RuntimeError(f"episode {self.id} is finished ({self.stop_reason})")
        if self._pending is not None:
            raise RuntimeError("observe() the pending tool call before the next step()")
        n = n_tokens if n_tokens is not None else max(1, len(model_text) // 4)
        self.counters.response_tokens += n
        action = parse_action(model_text, require_reason=self.require_reason)
        turn = Turn(len(self.turns), model_text, action, n_tokens=n_tokens, latency_s=latency_s)
        self.turns.append(turn)

        if action.kind == "answer":
            return self._finish(action.argument, "answer")
        if action.kind == "invalid":
            self.counters.invalid_in_a_row += 1
            self.counters.invalid_total += 1
            if self.counters.invalid_in_a_row > self.limits.max_invalid_actions:
                return self._finish(None, "invalid_actions")
            stop = self._out_of_budget()
            if stop:
                return stop
            msg = self.prompts.invalid_action.format(error=action.error)
            return self._inject(render_information(msg))
        self.counters.invalid_in_a_row = 0
        stop = self._out_of_budget()
        if stop:
            return stop
        denied = self._denied(action)
        if denied:
            return self._inject(render_information(self.prompts.budget_spent.format(what=denied)))
        self._pending = self._request(action, turn.index)
        return self._pending

    def _out_of_budget(self) -> Finished | None:
        if len(self.turns) >= self.limits.max_turns:
            return self._finish(None, "max_turns")
        if self.counters.response_tokens >= self.limits.max_response_tokens:
            return self._finish(None, "token_budget")
        return None

    def _denied(self, action: Action) -> str | None:
        lim, c = self.limits, self.counters
        if action.kind == "image_search":
            if not lim.allow_image_search or lim.max_image_searches == 0:
                return "image search is not available in this run"
            if c.image_searches >= lim.max_image_searches:
                n = lim.max_image_searches
                return f"image search may be used {'once' if n == 1 else f'{n} times'} per question"
        if action.kind == "text_search":
            if not lim.allow_text_search:
                return "text search is not available in this run"
            if lim.max_text_searches is not None and c.text_searches >= lim.max_text_searches:
                return f"the text-search budget ({lim.max_text_searches}) is spent"
        if c.tool_calls >= lim.max_tool_calls:
            return f"the tool-call budget ({lim.max_tool_calls}) is spent"
        return None

    def _request(self, action: Action, turn_index: int) -> ToolRequest:
        if action.kind == "text_search":
            return ToolRequest("text_search", action.argument, turn_index)
        if action.whole_image:
            return ToolRequest("image_search", action.argument, turn_index, whole_image=True)
        if not self.limits.crop_search:
            return ToolRequest(
                "image_search", action.argument, turn_index, whole_image=True,
                note="crop search is disabled in this run: the whole image was searched",
            )
        return ToolRequest("image_search", action.argument, turn_index, box=action.box)

    def observe(self, call: ToolCall) -> str:
        """Record the pending tool call's result and inject it. Returns the injected text."""
        if self._pending is None:
            raise RuntimeError("observe() without a pending tool request")
        req, self._pending = self._pending, None
        self.counters.tool_calls += 1
        if req.kind == "image_search":
            self.counters.image_searches += 1
        else:
            self.counters.text_searches += 1
        if req.note and not call.note:
            call.note = req.note
        turn = self.turns[req.turn_index]
        turn.tool_call = call
        text = render_information(information_text(call))
        follow = (
            self.prompts.after_image_search if req.kind == "image_search"
            else self.prompts.after_text_search
        )
        notes = self._budget_notes()
        if follow:
            text += "\n" + follow.format(question=self.question)
        if notes:
            text += "\n" + notes
        turn.observation = text
        return text

    def _budget_notes(self) -> str:
        lim, c = self.limits, self.counters
        if c.tool_calls >= lim.max_tool_calls:
            return self.prompts.budget_note.format(
                what=f"all {lim.max_tool_calls} tool calls are used")
        if len(self.turns) >= lim.max_turns - 1:
            return self.prompts.budget_note.format(what="the next turn is the last one")
        return ""

    def _inject(self, observation: str) -> Corrective:
        self.turns[-1].observation = observation
        return Corrective(observation)

    def _finish(self, answer: str | None, reason: str) -> Finished:
        self.answer = answer
        self.stop_reason = reason
        return Finished(answer, reason)

    def fail(self, error: str) -> Finished:
        """The policy itself failed; the episode ends with what it has."""
        self.metadata["policy_error"] = error
        if self._pending is not None:
            self._pending = None
        return self._finish(None, "policy_error")

    # -- result ------------------------------------------------------------------------------

    def sources(self) -> list[str]:
        """URLs of the hits the answer drew on: hits mentioning the answer, else the last call's.

        Only http(s) URLs and local ``doc:`` ids count: a ``javascript:`` or ``data:`` URL from a
        hostile search hit never becomes a source."""
        calls = [t.tool_call for t in self.turns if t.tool_call and not t.tool_call.error]
        if not self.answer or not calls:
            return []
        want = _words(self.answer)
        found: list[str] = []
        for call in calls:
            for h in call.hits:
                if want and h.url not in found and want <= _words(f"{h.title} {h.snippet}"):
                    found.append(h.url)
        if not found:
            found = [h.url for h in calls[-1].hits[:3]]
        return [u for u in found if is_source_url(u)]

    def trajectory(self) -> Trajectory:
        return Trajectory(
            id=self.id,
            question=self.question,
            image=self.image,
            turns=list(self.turns),
            answer=self.answer,
            sources=self.sources(),
            stop_reason=self.stop_reason,
            prompt=list(self.prompt),
            gold=list(self.gold),
            metadata={**self.metadata, "prompts": self.prompts.version, "limits": _limits(self.limits)},
        )


def _limits(limits: Limits) -> dict:
    return {f.name: getattr(limits, f.name) for f in fields(limits)}  # flat: faster than asdict
