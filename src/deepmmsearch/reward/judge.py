"""Judges: decide whether a predicted answer matches the gold answers.

One small protocol, three registered backends (``registry.JUDGE``)::

    judge = JUDGE.build({"name": "rule"})                       # offline, deterministic
    judge = JUDGE.build({"name": "llm", "mode": "eval",          # E.5 [CORRECT]/[INCORRECT]
                         "policy": {"name": "openai", "model": "gpt-4o"},
                         "cache": "runs/judge_cache.sqlite"})
    judge = JUDGE.build({"name": "fixture", "verdicts": {"Paris": True}})  # canned, for tests
    verdict = await judge.judge(question, prediction, answers)   # -> types.Verdict

``Verdict.correct`` is True / False, or None when an LLM judge's reply could not be parsed (or
the call failed): None is never a grade — count it separately (the raw reply is kept). Every
judge marks give-up answers (:func:`deepmmsearch.protocol.is_give_up`) and empty answers
incorrect without asking a model. :func:`judge_many` judges a batch with bounded concurrency.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepmmsearch.data.scoring import parse_numbers, squad_normalize
from deepmmsearch.protocol import is_give_up
from deepmmsearch.registry import ComponentSpec, ConfigError
from deepmmsearch.reward.bench_prompts import (
    BROWSECOMP_GRADER,
    MMVET_GRADER,
    parse_browsecomp_reply,
    parse_mmvet_reply,
)
from deepmmsearch.roles import Judge
from deepmmsearch.types import Message, Verdict

log = logging.getLogger(__name__)


async def judge_many(judge: Judge, items: Sequence[tuple[str, str | None, Sequence[str]]],
                     concurrency: int = 8) -> list[Verdict]:
    """Judge ``(question, prediction, answers)`` triples concurrently, in input order."""
    sem = asyncio.Semaphore(max(1, concurrency))

    async def one(item: tuple[str, str | None, Sequence[str]]) -> Verdict:
        async with sem:
            return await judge.judge(*item)

    return list(await asyncio.gather(*(one(it) for it in items)))


def _pre_verdict(name: str, prediction: str | None) -> Verdict | None:
    """Incorrect without asking anyone: no answer, or the give-up answer."""
    if prediction is None or not str(prediction).strip():
        return Verdict(False, name, reason="no answer", score=0.0)
    if is_give_up(prediction):
        return Verdict(False, name, reason="gave up", score=0.0)
    return None


# ---------------------------------------------------------------------------------------------
# rule


_WORD_NUMBERS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_RANGE_RE = re.compile(r"from\s+([-+]?[\d.,]+)\s+to\s+([-+]?[\d.,]+)")


def _norm(text: str) -> str:
    return " ".join(_WORD_NUMBERS.get(w, w) for w in squad_normalize(text).split())


class RuleJudge:
    """Normalised exact / alias match, containment of short gold answers, numeric tolerance.

    - exact: prediction equals a gold answer or alias after normalisation (case, punctuation,
      articles, number words);
    - containment: a gold answer of at most ``max_gold_words`` words appears as whole words in
      a prediction of at most ``max_prediction_words`` words ("It is the Seine." vs "Seine");
    - numeric: a number in the prediction is within ``numeric_tolerance`` (relative) of the gold
      number, or inside a gold range written "from LO to HI"; four-digit integers that look like
      years (1000–2999) must match exactly.
    """

    name = "rule"

    def __init__(self, numeric_tolerance: float = 0.05, max_gold_words: int = 5,
                 max_prediction_words: int = 40, containment: bool = True) -> None:
        if numeric_tolerance < 0:
            raise ConfigError("rule judge: numeric_tolerance must be >= 0")
        self.tol = numeric_tolerance
        self.max_gold_words = max_gold_words
        self.max_prediction_words = max_prediction_words
        self.containment = containment

    async def judge(self, question: str, prediction: str | None,
                    answers: Sequence[str]) -> Verdict:
        return self.decide(prediction, answers)

    def decide(self, prediction: str | None, answers: Sequence[str]) -> Verdict:
        """The synchronous core of :meth:`judge`."""
        pre = _pre_verdict(self.name, prediction)
        if pre is not None:
            return pre
        pred = _norm(str(prediction))
        short_enough = len(pred.split()) <= self.max_prediction_words
        for i, gold in enumerate(answers):
            g = _norm(gold)
            if not g:
                continue
            if pred == g:
                return Verdict(True, self.name, reason="exact" if i == 0 else f"alias {gold!r}", score=1.0)
            if (self.containment and short_enough and len(g.split()) <= self.max_gold_words
                    and re.search(rf"(?<!\S){re.escape(g)}(?!\S)", pred)):
                return Verdict(True, self.name, reason=f"contains {gold!r}", score=1.0)
            if short_enough and self._numeric(str(prediction), gold):
                return Verdict(True, self.name, reason=f"numeric match {gold!r}", score=1.0)
        return Verdict(False, self.name, reason="no match", score=0.0)

    def _numeric(self, prediction: str, gold: str) -> bool:
        m = _RANGE_RE.search(gold)
        preds = parse_numbers(prediction, k=8)
        if not preds:
            return False
        if m:
            lo, hi = sorted(float(x.replace(",", "").rstrip(".")) for x in m.groups())
            return any(lo <= p <= hi for p in preds)
        nums = parse_numbers(gold, k=2)
        if len(nums) != 1:
            return False
        g = nums[0]
        if g.is_integer() and 1000 <= g <= 2999:
            return any(p == g for p in preds)
        return any(abs(p - g) <= self.tol * abs(g) + 1e-9 for p in preds)


# ---------------------------------------------------------------------------------------------
# llm


_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def parse_eval_reply(text: str) -> bool | None:
    """E.5 structure: exactly one of ``[CORRECT]`` / ``[INCORRECT]``; None otherwise."""
    t = _THINK_RE.sub(" ", text or "").upper()
    labels = set(re.findall(r"\[\s*(INCORRECT|CORRECT)\s*\]", t))
    if len(labels) == 1:
        return labels.pop() == "CORRECT"
    if labels:
        return None
    bare = re.sub(r"[^A-Z]", "", t)
    return {"CORRECT": True, "INCORRECT": False}.get(bare)


def parse_reward_reply(text: str) -> tuple[bool | None, str]:
    """E.6 structure: ``MATCH: true|false`` then ``REASON: ...``; (None, "") when unparseable."""
    t = _THINK_RE.sub(" ", text or "")
    values = {v.lower() in ("true", "yes") for v in
              re.findall(r"MATCH\**\s*[:：=]\s*\**\s*(true|false|yes|no)\b", t, re.IGNORECASE)}
    m = re.search(r"REASON\**\s*[:：]\s*\**\s*(.+)", t, re.IGNORECASE)
    reason = m.group(1).strip() if m else ""
    return (values.pop() if len(values) == 1 else None), reason


_SECRET_KEYS = ("key", "token", "secret", "password")
# eval: E.5; reward: E.6; browsecomp / mmvet: those benchmarks' graders (reward/bench_prompts.py)
MODES = ("eval", "reward", "browsecomp", "mmvet")
BENCH_GRADERS = {"browsecomp": BROWSECOMP_GRADER, "mmvet": MMVET_GRADER}


def _identity(spec: ComponentSpec) -> dict[str, Any]:
    return {k: v for k, v in spec.to_dict().items()
            if not any(s in k.lower() for s in _SECRET_KEYS)}


class LLMJudge:
    """An LLM judge through any Policy (``openai``, ``hf``, ``scripted`` ...).

    ``mode="eval"``: the E.5 prompt (``PromptSet.judge_eval``), reply ``[CORRECT]`` /
    ``[INCORRECT]``; ``mode="reward"``: the E.6 prompt (``judge_reward``), reply ``MATCH: true|false``
    + ``REASON:``. ``cache`` (a SQLite path) stores parseable replies keyed by the mode, prompt
    version, model identity (never its API key), question, gold answers and prediction, so
    re-judging makes no call; unparseable replies are not cached and are asked again next time.
    ``shortcut``: a normalised exact match with a gold answer is accepted without a call.
    """

    def __init__(self, policy: Any, mode: str = "eval", prompts: Any = "paper",
                 cache: str | None = None, max_new_tokens: int = 256, shortcut: bool = True,
                 name: str = "llm") -> None:
        from deepmmsearch.prompts import PromptSet, get_prompts
        from deepmmsearch.registry import POLICY

        if mode not in MODES:
            raise ConfigError(f"llm judge: mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.prompts = prompts if isinstance(prompts, PromptSet) else get_prompts(str(prompts))
        if hasattr(policy, "generate"):
            self.policy = policy
            self.identity: dict[str, Any] = {"name": getattr(policy, "name", type(policy).__name__),
                                             "model": getattr(policy, "model", None)}
        else:
            spec = ComponentSpec.parse(policy, "judge.policy")
            self.policy = POLICY.build(spec, prompts=self.prompts)
            self.identity = _identity(spec)
        self.name = name
        self.max_new_tokens = max_new_tokens
        self.shortcut = shortcut
        self.cache = None
        if cache:
            from deepmmsearch.tools.cache import ToolCache

            self.cache = ToolCache(Path(cache), "live")
        self.calls = 0
        self.cache_hits = 0

    def render(self, question: str, prediction: str, answers: Sequence[str]) -> str:
        refs = " | ".join(answers)
        if self.mode in BENCH_GRADERS:
            return BENCH_GRADERS[self.mode].format(question=question, references=refs,
                                                   candidate=prediction)
        if self.mode == "eval":
            return self.prompts.judge_eval.format(question=question, references_for_prompt=refs,
                                                  candidate=prediction)
        return self.prompts.judge_reward.format(question=question, references=refs,
                                                candidate=prediction)

    def parse(self, raw: str) -> Verdict:
        if self.mode == "mmvet":
            score = parse_mmvet_reply(raw)
            return Verdict(None if score is None else score >= 0.5, self.name, raw=raw,
                           reason="" if score is not None else "unparseable judge reply",
                           score=score)
        if self.mode == "browsecomp":
            correct, reason = parse_browsecomp_reply(raw)
        elif self.mode == "eval":
            correct, reason = parse_eval_reply(raw), ""
        else:
            correct, reason = parse_reward_reply(raw)
        if correct is None:
            reason = reason or "unparseable judge reply"
        return Verdict(correct, self.name, raw=raw, reason=reason,
                       score=None if correct is None else float(correct))

    def _key(self, question: str, prediction: str, answers: Sequence[str]) -> str:
        from deepmmsearch.tools.cache import make_key

        return make_key("judge", self.mode, self.prompts.version, self.identity, question.strip(),
                        list(answers), prediction.strip())

    async def judge(self, question: str, prediction: str | None,
                    answers: Sequence[str]) -> Verdict:
        pre = _pre_verdict(self.name, prediction)
        if pre is not None:
            return pre
        pred = str(prediction)
        if self.shortcut and any(_norm(pred) == _norm(a) for a in answers if _norm(a)):
            return Verdict(True, self.name, reason="exact match (no call)", score=1.0)
        key = self._key(question, pred, answers)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.cache_hits += 1
                return self.parse(hit["raw"])
        raw = await self._ask(question, pred, answers)
        if raw is None:
            return Verdict(None, self.name, reason="judge call failed")
        verdict = self.parse(raw)
        if self.cache is not None and verdict.correct is not None:
            self.cache.put(key, {"raw": raw}, role="judge", backend=str(self.identity.get("name")),
                           input=f"{question[:200]} || {pred[:200]}")
        return verdict

    async def _ask(self, question: str, prediction: str, answers: Sequence[str]) -> str | None:
        from deepmmsearch.policies.base import GenerationRequest

        request = GenerationRequest(
            messages=[Message("user", self.render(question, prediction, answers))],
            max_new_tokens=self.max_new_tokens, stop=(), episode_id=f"judge-{self.mode}",
            question=question, metadata={"role": "judge", "mode": self.mode},
        )
        self.calls += 1
        try:
            gen = await self.policy.generate(request)
        except Exception as exc:  # noqa: BLE001 - a failing judge is a None verdict, not a crash
            log.warning("judge call failed: %s: %s", type(exc).__name__, exc)
            return None
        return gen.text


# ---------------------------------------------------------------------------------------------
# fixture


class FixtureJudge:
    """Canned verdicts for tests: ``verdicts`` (or a YAML/JSON ``path``) maps a prediction to
    true / false / null (null: an unparseable reply). Unlisted predictions get ``default``:
    ``"rule"`` (ask the rule judge) or a fixed true / false / null."""

    name = "fixture"

    def __init__(self, verdicts: Mapping[str, bool | None] | None = None, path: str | None = None,
                 default: Any = "rule") -> None:
        table: dict[str, Any] = dict(verdicts or {})
        if path is not None:
            import yaml

            p = Path(path)
            if not p.exists():
                raise ConfigError(f"fixture judge: file not found: {p}")
            table.update(yaml.safe_load(p.read_text(encoding="utf-8")) or {})
        if default != "rule" and default not in (True, False, None):
            raise ConfigError("fixture judge: default must be 'rule', true, false or null")
        self.table = {_norm(str(k)): v for k, v in table.items()}
        self.default = default
        self.rule = RuleJudge()
        self.calls: list[tuple[str, str | None]] = []

    async def judge(self, question: str, prediction: str | None,
                    answers: Sequence[str]) -> Verdict:
        self.calls.append((question, prediction))
        key = _norm(str(prediction or ""))
        if key in self.table:
            value = self.table[key]
        elif self.default == "rule":
            verdict = self.rule.decide(prediction, answers)
            verdict.judge = self.name
            return verdict
        else:
            value = self.default
        if value is None:
            return Verdict(None, self.name, raw="(canned unparseable reply)",
                           reason="unparseable judge reply")
        return Verdict(bool(value), self.name, reason="canned", score=float(bool(value)))
