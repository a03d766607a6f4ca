"""veRL's custom reward function: ``R = (1 − λ)·s + λ·s_fmt`` (paper §3.2), no veRL import.

Wired with::

    reward.custom_reward_function.path=pkg://deepmmsearch.train.verl.reward
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.judge=rule          # default
    +reward.custom_reward_function.reward_kwargs.judge_config=/abs/judge.yaml   # an LLM judge

``judge_config`` is a YAML file with a ``judge:`` component, e.g.
``{judge: {name: llm, mode: reward, policy: {name: openai, model: gpt-4o}, cache: runs/judge.sqlite}}``
(the E.6 prompt; verdicts cached). The judge is built once per reward worker.

What is scored:

- the model turns: from the ``deepmmsearch_agent`` loop's ``extra_info["dmm_turns"]`` (the
  episode's own turn texts); for other loops, split from ``solution_str`` (the decoded response:
  model turns around ``<information>`` blocks, with the role words ``user`` / ``assistant`` that
  :data:`~deepmmsearch.train.verl.template.TOOL_TURN_TEMPLATE` leaves once special tokens are
  stripped);
- ``s``: the judge on the final answer (the last turn's ``<answer>``; none when that turn is not
  a well-formed answer), against ``extra_info["answers"]`` (else ``ground_truth``);
- ``s_fmt``: :func:`~deepmmsearch.protocol.format_score` over the turns (one ``<reason>`` and one
  action per turn, ends with an answer, ≤ 1 image search, ≤ 10 tool calls).

Returns ``{"score": R, "correctness", "format", "answered", "give_up", "judge_unparseable",
"tool_calls", "image_searches", "text_searches", "turns"}`` — numbers only (veRL logs them).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from deepmmsearch.protocol import (
    format_score,
    information_spans,
    is_give_up,
    parse_action,
)
from deepmmsearch.reward.combine import FORMAT_WEIGHT, combine
from deepmmsearch.train.verl.template import DECODED_ASSISTANT_OPEN, DECODED_TOOL_OPEN

log = logging.getLogger(__name__)

_JUDGES: dict[str, Any] = {}
_JUDGES_LOCK = threading.Lock()


def get_judge(judge: str | Mapping[str, Any] = "rule", judge_config: str | None = None) -> Any:
    """The judge named by ``judge`` (a registry spec) or by ``judge_config``'s ``judge:`` key."""
    spec: Any = judge
    if judge_config:
        from deepmmsearch.config import load_yaml
        from deepmmsearch.registry import ConfigError
        from deepmmsearch.train.verl.session import resolve_path

        data = load_yaml(resolve_path(judge_config, "judge config"))
        if "judge" not in data:
            raise ConfigError(f"{judge_config}: expected a 'judge:' component")
        spec = data["judge"]
    if isinstance(spec, Mapping):
        spec = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in spec.items()}
    key = json.dumps(spec, sort_keys=True, default=str)
    with _JUDGES_LOCK:
        if key not in _JUDGES:
            from deepmmsearch.registry import JUDGE

            _JUDGES[key] = JUDGE.build(spec)
        return _JUDGES[key]


def _strings(value: Any) -> list[str]:
    """Gold answers from a list, a numpy array, a JSON-encoded list or one string."""
    if value is None:
        return []
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            try:
                return _strings(json.loads(s))
            except ValueError:
                pass
        return [s] if s else []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return [str(value)]


def gold_answers(ground_truth: Any, extra_info: Mapping[str, Any]) -> list[str]:
    answers = _strings(extra_info.get("answers"))
    for g in _strings(ground_truth):
        if g not in answers:
            answers.append(g)
    return answers


def split_turns(solution_str: str) -> list[str]:
    """Model turns of a decoded response: the text around ``<information>`` blocks, without the
    follow-up text and the role words a new-turn template leaves behind."""
    spans = information_spans(solution_str)
    if not spans:
        return [solution_str.strip()]
    turns, pos = [], 0
    for start, end in spans:
        turns.append(solution_str[pos:start])
        pos = end
    turns.append(solution_str[pos:])
    out = []
    for i, t in enumerate(turns):
        if i > 0 and DECODED_ASSISTANT_OPEN in t:  # follow-up instruction, then the header
            t = t.rsplit(DECODED_ASSISTANT_OPEN, 1)[1]
        if i < len(turns) - 1 and t.rstrip().endswith(DECODED_TOOL_OPEN.strip()):
            t = t.rstrip()[: -len(DECODED_TOOL_OPEN.strip())]
        out.append(t.strip())
    return out


def final_answer(turns: Sequence[str]) -> str | None:
    if not turns:
        return None
    action = parse_action(turns[-1])
    return action.argument if action.kind == "answer" else None


def _turns_and_answer(solution_str: str, extra_info: Mapping[str, Any]) -> tuple[list[str], str | None]:
    turns = extra_info.get("dmm_turns")
    if turns is not None:  # the deepmmsearch_agent loop: the episode's own turns and answer
        turns = [str(t) for t in (turns.tolist() if hasattr(turns, "tolist") else turns)]
        answer = extra_info.get("dmm_answer")
        return turns, (str(answer) if answer is not None else None)
    turns = split_turns(solution_str)
    return turns, final_answer(turns)


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    *,
    judge: str | Mapping[str, Any] = "rule",
    judge_config: str | None = None,
    format_weight: float = FORMAT_WEIGHT,
    max_image_searches: int = 1,
    max_tool_calls: int = 10,
    **kwargs: Any,
) -> dict[str, float]:
    """veRL's reward hook; see the module docstring. Never raises for a bad response."""
    info = dict(extra_info or {})
    turns, answer = _turns_and_answer(solution_str or "", info)
    fmt = format_score(turns, max_image_searches=max_image_searches, max_tool_calls=max_tool_calls)
    actions = [parse_action(t) for t in turns]
    verdict = await get_judge(judge, judge_config).judge(
        str(info.get("question") or ""), answer, gold_answers(ground_truth, info))
    correct = 1.0 if verdict.correct else 0.0
    n_img = sum(a.kind == "image_search" for a in actions)
    n_text = sum(a.kind == "text_search" for a in actions)
    return {
        "score": combine(correct, fmt, format_weight),
        "correctness": correct,
        "format": fmt,
        "answered": float(answer is not None),
        "give_up": float(is_give_up(answer)),
        "judge_unparseable": float(verdict.correct is None),
        "tool_calls": float(info.get("dmm_tool_calls", n_img + n_text) or 0),
        "image_searches": float(info.get("dmm_image_searches", n_img) or 0),
        "text_searches": float(info.get("dmm_text_searches", n_text) or 0),
        "turns": float(len(turns)),
    }
