"""``deepmmsearch_agent``: veRL's agent loop driven by our episode state machine.

Registered through ``configs/verl/agent_loops.yaml``
(``actor_rollout_ref.rollout.agent.agent_loop_config_path``) and chosen by the dataset column
``agent_name`` or ``rollout.agent.default_agent_loop=deepmmsearch_agent``.

Why a loop of our own (docs/DECISIONS.md, Training): veRL's ``ToolAgentLoop`` opens a new chat
turn for every tool result, while our SFT template keeps the ``<information>`` block inline in the
assistant turn. This loop keeps the SFT layout, so the RL tokens and masks are those SFT trains on
(``conversation/encoding.py``), token for token, and one :class:`~deepmmsearch.agent.state.Episode` decides
everything the TRL rollout decides — parsing, budgets (image search once, ≤ N tool calls, turns,
response tokens), corrective observations, the rendered observation.

Per trajectory:

1. the prompt ids come from veRL's continuous-token builder on the dataset's messages with
   ``custom_chat_template`` = our template (the same ids SFT builds);
2. generate (token in, token out) with stop strings at the action closing tags (vLLM / SGLang)
   and a token-level cut after the first action in any case; model tokens get mask 1 and their
   log-probs;
3. ``Episode.step(text)``: an answer ends the trajectory; a search runs through the shared
   toolbox (the tools of ``tool_config_path``; the original image is the dataset's image);
   the observation is tokenised on its own (mask 0, log-prob 0) — exactly our SFT encoding;
4. stop on the episode's end, ``response_length``, ``multi_turn.max_assistant_turns`` or
   ``max_user_turns`` (veRL's order).

``extra_fields`` carry what the reward needs: ``dmm_turns`` (the model turn texts),
``dmm_answer``, ``dmm_stop_reason`` and the tool counters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import (
    AgentLoopBase,
    AgentLoopOutput,
    ToolListWrap,
    register,
)
from verl.utils.profiler import simple_timer

from deepmmsearch.agent.state import Corrective, Episode, Finished, Step, ToolRequest
from deepmmsearch.protocol import IMAGE_PLACEHOLDER, STOP_STRINGS
from deepmmsearch.train.verl.session import AgentRuntime, action_cut, counters, load_runtime
from deepmmsearch.types import Message

log = logging.getLogger(__name__)

LOOP_NAME = "deepmmsearch_agent"


def stop_params(backend: str | None) -> dict[str, Any]:
    """Sampling keys that stop at an action's closing tag, for backends that take stop strings."""
    if backend == "vllm":
        return {"stop": list(STOP_STRINGS), "include_stop_str_in_output": True}
    if backend == "sglang":
        return {"stop": list(STOP_STRINGS), "no_stop_trim": True}
    return {}


def episode_prompt(messages: list[dict[str, Any]]) -> list[Message]:
    """veRL's structured prompt messages → our records (``<image>`` where an image block was)."""
    out = []
    for m in messages:
        content, images = m.get("content"), []
        if isinstance(content, list):
            parts = []
            for block in content:
                if isinstance(block, dict) and block.get("type") in ("image", "image_url"):
                    parts.append(IMAGE_PLACEHOLDER)
                    ref = block.get("path")
                    images.append(ref if isinstance(ref, str) and ref else f"image-{len(images)}")
                elif isinstance(block, dict) and block.get("type") == "text":
                    parts.append(str(block.get("text", "")))
            content = "".join(parts)
        out.append(Message(m.get("role", "user"), str(content or ""), images=tuple(images)))
    return out


@dataclass
class _State:
    """One trajectory's tokens and counters."""

    request_id: str
    episode: Episode
    images: list[Any] | None
    prompt_len: int
    ids: list[int]
    mask: list[int] = field(default_factory=list)
    logprobs: list[float] | None = field(default_factory=list)
    assistant_turns: int = 0
    user_turns: int = 0
    stop: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    server_fields: dict[str, Any] = field(default_factory=dict)

    def add(self, ids: list[int], trained: bool, logprobs: list[float] | None = None) -> None:
        self.ids.extend(ids)
        self.mask.extend([int(trained)] * len(ids))
        if self.logprobs is not None:
            if trained and logprobs is None:
                self.logprobs = None  # a generation without log-probs: report none
            else:
                self.logprobs.extend(logprobs if trained else [0.0] * len(ids))


@register(LOOP_NAME)
class DeepMMSearchAgentLoop(AgentLoopBase):
    """See the module docstring. ``agent_config`` (in the agent-loop YAML) overrides the tools'."""

    def __init__(self, *args: Any, tools: ToolListWrap | None = None,
                 agent_config: str | None = None, **kwargs: Any) -> None:
        kwargs.pop("name", None)  # the agent-loop YAML entry's own name
        super().__init__(*args, **kwargs)
        multi_turn = self.rollout_config.multi_turn
        self.max_user_turns = multi_turn.max_user_turns
        self.max_assistant_turns = multi_turn.max_assistant_turns
        self.response_length = self.rollout_config.response_length
        self.runtime = self._runtime(tools, agent_config)
        self.stop_params = stop_params(self.rollout_config.get("name"))

    @staticmethod
    def _runtime(tools: ToolListWrap | None, agent_config: str | None) -> AgentRuntime:
        if agent_config:
            return load_runtime(agent_config)
        for tool in (tools.tools if tools else []):
            if hasattr(tool, "agent_config"):
                return load_runtime(tool.agent_config, getattr(tool, "overrides", ()))
        raise ValueError(
            f"{LOOP_NAME}: no agent config; list deepmmsearch.train.verl.tools.* in "
            "actor_rollout_ref.rollout.multi_turn.tool_config_path (configs/verl/tools.yaml)")

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        st = await self._start(kwargs)
        while await self._turn(st, sampling_params):
            pass
        return self._output(st)

    async def _start(self, kwargs: dict[str, Any]) -> _State:
        messages = list(kwargs["raw_prompt"])
        info = dict(kwargs.get("extra_info") or {})
        question = info.get("question")
        if not question:
            raise ValueError(f"{LOOP_NAME}: extra_info.question is missing (write the parquet "
                             "with `deepmmsearch data export ... --format verl`)")
        images = (await self.process_multi_modal_info(messages)).get("images")
        answers = info.get("answers")
        episode = self.runtime.episode(
            str(question), episode_id=f"{info.get('id', info.get('index', 'q'))}-{uuid4().hex[:8]}",
            gold=[str(a) for a in answers] if answers is not None else (),
            prompt=episode_prompt(messages))
        self._assert_mm_supported(bool(images))
        prompt_ids = await self.ct_build_initial_tokens(messages, images=images)
        request_id = "det-0" if self.rollout_config.full_determinism else uuid4().hex
        return _State(request_id, episode, images, len(prompt_ids), list(prompt_ids))

    async def _turn(self, st: _State, sampling_params: dict[str, Any]) -> bool:
        """One generation and what follows it; False when the trajectory is over."""
        ep = st.episode
        budget = min(ep.max_new_tokens(), self.response_length - len(st.mask))
        if budget <= 0:
            st.stop = "response_length"
            return False
        ids, logprobs = await self._generate(st, {**sampling_params, **self.stop_params,
                                                  "max_tokens": budget})
        st.add(ids, True, logprobs)
        st.assistant_turns += 1
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        step = ep.step(text, n_tokens=len(ids))
        if isinstance(step, Finished):
            return False
        st.stop = self._cap(st)
        if st.stop:
            return False
        observation = await self._observe(st, step)
        obs_ids = self.tokenizer.encode(observation, add_special_tokens=False)
        if len(st.mask) + len(obs_ids) >= self.response_length:
            st.stop = "response_length"
            return False
        st.add(obs_ids, False)
        st.user_turns += 1
        return True

    def _cap(self, st: _State) -> str | None:
        if len(st.mask) >= self.response_length:
            return "response_length"
        if self.max_assistant_turns and st.assistant_turns >= self.max_assistant_turns:
            return "max_assistant_turns"
        if self.max_user_turns and st.user_turns >= self.max_user_turns:
            return "max_user_turns"
        return None

    async def _generate(self, st: _State, params: dict[str, Any]) -> tuple[list[int], list[float] | None]:
        with simple_timer("generate_sequences", st.metrics):
            out = await self.server_manager.generate(
                request_id=st.request_id, prompt_ids=st.ids, sampling_params=params,
                image_data=st.images)
        st.metrics["num_preempted"] = st.metrics.get("num_preempted", 0) + (out.num_preempted or 0)
        fields = out.extra_fields or {}  # e.g. the weights' global step, as ToolAgentLoop keeps it
        if not st.server_fields:
            st.server_fields.update(fields)
        elif fields.get("max_global_steps") is not None:
            st.server_fields["max_global_steps"] = fields["max_global_steps"]
        ids = list(out.token_ids)
        n = action_cut(lambda x: self.tokenizer.decode(x, skip_special_tokens=False), ids)
        logprobs = list(out.log_probs[:n]) if out.log_probs else None
        return ids[:n], logprobs

    async def _observe(self, st: _State, step: Step) -> str:
        ep = st.episode
        if isinstance(step, ToolRequest):
            with simple_timer("tool_calls", st.metrics):
                call = await self.runtime.toolbox.run(
                    step, question=ep.question, image=st.images[0] if st.images else None,
                    episode_id=ep.id)
            return ep.observe(call)
        assert isinstance(step, Corrective)
        return step.observation

    def _output(self, st: _State) -> AgentLoopOutput:
        ep = self.episode = st.episode  # kept for inspection (one loop instance per sample)
        n = self.response_length
        calls = [t.tool_call for t in ep.turns if t.tool_call is not None]
        extra = {**st.server_fields, "turn_scores": [], "tool_rewards": [],
                 "dmm_turns": [t.model_text for t in ep.turns], "dmm_answer": ep.answer,
                 "dmm_stop_reason": ep.stop_reason or st.stop, **counters(ep),
                 "dmm_tool_errors": sum(bool(c.error) for c in calls)}
        return AgentLoopOutput(
            prompt_ids=st.ids[: st.prompt_len],
            response_ids=st.ids[st.prompt_len:][:n],
            response_mask=st.mask[:n],
            response_logprobs=st.logprobs[:n] if st.logprobs else None,
            multi_modal_data={"images": st.images} if st.images else {},
            mm_processor_kwargs=self._get_mm_processor_kwargs(),
            num_turns=st.user_turns + st.assistant_turns + 1,
            metrics=st.metrics,
            extra_fields=extra,
        )
