"""The evaluation workflows of the paper's Table 1, each ``async (runtime, sample) -> Trajectory``.

- ``direct``: no tools. The model sees the ``direct`` prompt and answers; a search attempt gets a
  corrective observation (the tools are switched off in its limits).
- ``rag`` (E.3): exactly one whole-image search, whose summary goes into the first prompt; the
  model writes one ``<text_search>`` query (no ``<reason>`` needed); that text search runs and its
  results come back with the answer instruction (``prompts.rag_answer``, as the environment's
  message, like an agent's observation); the model reasons and answers. A first turn that is not
  a text search falls back to the question
  itself as the query (recorded in ``metadata["rag_query_fallback"]``), so the workflow always
  makes its two searches. The fixed image search is stored in ``metadata["fixed_calls"]``.
- ``agent``: the search agent (E.1 prompts) with any policy — a prompted base model, or a trained
  checkpoint (policy ``hf`` on a checkpoint directory). Its limits come from the workflow spec, so
  the ablations are ``agent`` workflows with ``limits.crop_search: false`` or
  ``limits.max_text_searches: 1``.

``direct`` and ``agent`` run through :class:`~deepmmsearch.agent.state.Episode` and
:func:`~deepmmsearch.agent.loop.run_episode`; ``rag`` drives the same policy and
:class:`~deepmmsearch.agent.toolbox.Toolbox` turn by turn with :func:`protocol.parse_action`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from deepmmsearch.agent.loop import run_episode
from deepmmsearch.agent.state import Episode, ToolRequest
from deepmmsearch.agent.toolbox import Toolbox
from deepmmsearch.config import Limits
from deepmmsearch.conversation.messages import information_text
from deepmmsearch.policies.base import GenerationRequest
from deepmmsearch.prompts import PromptSet
from deepmmsearch.protocol import IMAGE_PLACEHOLDER, WHOLE_IMAGE, escape_information, parse_action
from deepmmsearch.roles import Policy
from deepmmsearch.tools.cache import ReplayMiss
from deepmmsearch.types import Message, Sample, Trajectory, Turn

log = logging.getLogger(__name__)


@dataclass
class WorkflowRuntime:
    """What a workflow needs to run one sample."""

    kind: str
    label: str
    policy: Policy
    toolbox: Toolbox
    prompts: PromptSet
    limits: Limits


WorkflowFn = Callable[[WorkflowRuntime, Sample, dict], Awaitable[Trajectory]]


def _user(template_text: str, image: str | None) -> Message:
    if image is None:
        return Message("user", template_text.replace(IMAGE_PLACEHOLDER, ""))
    return Message("user", template_text, images=(image,))


def _finish(traj: Trajectory, rt: WorkflowRuntime, limits: Limits, t0: float) -> Trajectory:
    traj.metadata["workflow"] = rt.kind
    traj.metadata["limits"] = asdict(limits)
    traj.wall_s = time.perf_counter() - t0
    return traj


async def direct(rt: WorkflowRuntime, sample: Sample, metadata: dict) -> Trajectory:
    """Answer without tools (``prompts.direct``)."""
    t0 = time.perf_counter()
    limits = replace(rt.limits, allow_image_search=False, allow_text_search=False, max_tool_calls=0)
    prompt = [_user(rt.prompts.direct.format(question=sample.question), sample.image)]
    ep = Episode(sample.question, sample.image, limits=limits, prompts=rt.prompts,
                 episode_id=sample.id, gold=sample.answers, metadata=metadata, prompt=prompt)
    traj = await run_episode(ep, rt.policy, rt.toolbox)
    return _finish(traj, rt, limits, t0)


async def agent(rt: WorkflowRuntime, sample: Sample, metadata: dict) -> Trajectory:
    """The search agent with the E.1 prompts and the workflow's limits."""
    t0 = time.perf_counter()
    ep = Episode(sample.question, sample.image, limits=rt.limits, prompts=rt.prompts,
                 episode_id=sample.id, gold=sample.answers, metadata=metadata)
    traj = await run_episode(ep, rt.policy, rt.toolbox)
    return _finish(traj, rt, rt.limits, t0)


class _PolicyFailed(Exception):
    pass


async def _generate(rt: WorkflowRuntime, sample: Sample, messages: list[Message], turn: int,
                    metadata: dict) -> tuple[str, int | None, float]:
    req = GenerationRequest(messages=messages, max_new_tokens=rt.limits.max_new_tokens_per_turn,
                            episode_id=sample.id, turn_index=turn, question=sample.question,
                            image=sample.image, metadata=metadata)
    t1 = time.perf_counter()
    try:
        gen = await rt.policy.generate(req)
    except ReplayMiss:
        raise
    except Exception as exc:
        log.warning("policy %s failed on %s: %s", getattr(rt.policy, "name", "?"), sample.id, exc)
        raise _PolicyFailed(f"{type(exc).__name__}: {exc}") from exc
    return gen.text, gen.n_tokens, time.perf_counter() - t1


async def rag(rt: WorkflowRuntime, sample: Sample, metadata: dict) -> Trajectory:
    """E.3: one whole-image search, one model-written text search, then the answer."""
    t0 = time.perf_counter()
    tb, p = rt.toolbox, rt.prompts
    image_call = await tb.run(ToolRequest("image_search", WHOLE_IMAGE, 0, whole_image=True),
                              question=sample.question, image=sample.image, episode_id=sample.id)
    first = _user(p.rag_query.format(question=sample.question,
                                     information=escape_information(information_text(image_call))),
                  sample.image)
    traj = Trajectory(id=sample.id, question=sample.question, image=sample.image, prompt=[first],
                      gold=list(sample.answers),
                      metadata={**metadata, "prompts": p.version, "fixed_calls": [image_call.to_dict()]})
    messages = [first]
    try:
        text, n_tok, lat = await _generate(rt, sample, messages, 0, metadata)
        action = parse_action(text, require_reason=False)
        query = action.argument if action.kind == "text_search" else sample.question
        if action.kind != "text_search":
            traj.metadata["rag_query_fallback"] = action.error or f"the model chose {action.kind}"
        call = await tb.run(ToolRequest("text_search", query, 0), question=sample.question,
                            image=sample.image, episode_id=sample.id)
        answer_prompt = p.rag_answer.format(question=sample.question,
                                            information=escape_information(information_text(call)))
        traj.turns.append(Turn(0, text, action, observation=answer_prompt, tool_call=call,
                               n_tokens=n_tok, latency_s=lat))
        messages += [Message("assistant", text), Message("tool", answer_prompt)]
        text, n_tok, lat = await _generate(rt, sample, messages, 1, metadata)
    except _PolicyFailed as exc:
        traj.metadata["policy_error"] = str(exc)
        traj.stop_reason = "policy_error"
        return _finish(traj, rt, rt.limits, t0)
    final = parse_action(text, require_reason=False)
    traj.turns.append(Turn(1, text, final, n_tokens=n_tok, latency_s=lat))
    if final.kind == "answer":
        traj.answer, traj.stop_reason = final.argument, "answer"
        traj.sources = [h.url for h in call.hits[:3]]
    else:
        traj.stop_reason = "invalid_actions"
    return _finish(traj, rt, rt.limits, t0)


WORKFLOWS: dict[str, WorkflowFn] = {"direct": direct, "rag": rag, "agent": agent}


def failed_trajectory(sample: Sample, kind: str, error: str, metadata: dict[str, Any]) -> Trajectory:
    """The record of a sample whose workflow crashed (a bug, not a tool or policy failure)."""
    return Trajectory(id=sample.id, question=sample.question, image=sample.image,
                      gold=list(sample.answers), stop_reason="workflow_error",
                      metadata={**metadata, "workflow": kind, "workflow_error": error})
