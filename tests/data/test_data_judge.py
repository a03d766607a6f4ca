"""Judges: rule, llm (through a Policy, E.5 and E.6 structures, cache) and fixture."""

from __future__ import annotations

import pytest

from deepmmsearch.config import load_config
from deepmmsearch.policies.base import Generation
from deepmmsearch.protocol import GIVE_UP
from deepmmsearch.registry import JUDGE, ConfigError
from deepmmsearch.reward.judge import (
    FixtureJudge,
    Judge,
    LLMJudge,
    RuleJudge,
    judge_many,
    parse_eval_reply,
    parse_reward_reply,
)


class FakeModel:
    """A policy that replies from a table keyed by the candidate answer; counts calls."""

    name = "fake"
    model = "fake-judge-1"

    def __init__(self, replies: dict[str, str], fail: bool = False) -> None:
        self.replies, self.fail, self.requests = replies, fail, []

    async def generate(self, request):
        self.requests.append(request)
        if self.fail:
            raise ConnectionError("endpoint down")
        text = request.messages[0].content
        cand = next(line for line in text.splitlines() if line.startswith(("Candidate:", "Model answer:")))
        return Generation(self.replies[cand.split(":", 1)[1].strip()])


@pytest.mark.parametrize("pred,answers,ok", [
    ("Seine", ["Seine"], True), ("the seine.", ["Seine"], True),
    ("It is the Seine River.", ["Seine River"], True),  # containment
    ("Seine River", ["River"], True),
    ("Paris", ["Seine", "Paris"], True),  # alias
    ("Thames", ["Seine"], False), ("", ["Seine"], False), (None, ["Seine"], False),
    (GIVE_UP, ["Unable to answer due to lack of relevant information"], False),
    ("Unable to answer due to lack of information.", ["x"], False),
    ("about 131 cm", ["130 cm"], True), ("145 cm", ["130 cm"], False),
    ("330 metres", ["330 (any value from 297 to 363)"], True),
    ("400 metres", ["330 (any value from 297 to 363)"], False),
    ("1950", ["1937"], False), ("opened in 1937", ["1937"], True),
    ("two", ["2"], True),
    ("not the seine but " + "word " * 60, ["Seine"], False),  # too long for containment
])
async def test_rule_judge(pred, answers, ok):
    v = await RuleJudge().judge("q", pred, answers)
    assert v.correct is ok and v.judge == "rule" and v.score == float(ok)


def test_registry_builds_each_judge_and_protocol():
    for spec in ({"name": "rule"}, {"name": "fixture", "verdicts": {"a": True}},
                 {"name": "llm", "policy": {"name": "scripted", "turns": ["[CORRECT]"]}}):
        assert isinstance(JUDGE.build(spec), Judge)
    with pytest.raises(ConfigError, match="mode"):
        JUDGE.build({"name": "llm", "policy": "scripted", "mode": "strict"})
    with pytest.raises(ConfigError, match="unknown option"):
        JUDGE.validate({"name": "rule", "tolerance": 0.1})


@pytest.mark.parametrize("reply,expected", [
    ("[CORRECT]", True), ("[INCORRECT]", False), ("**[CORRECT]**\n", True), ("[ correct ]", True),
    ("Correct.", True), ("INCORRECT", False), ("<think>maybe [INCORRECT]</think>[CORRECT]", True),
    ("[CORRECT] or [INCORRECT]", None), ("I think so", None), ("", None),
])
def test_parse_eval(reply, expected):
    assert parse_eval_reply(reply) is expected


@pytest.mark.parametrize("reply,expected,reason", [
    ("MATCH: true\nREASON: same river", True, "same river"),
    ("**MATCH:** False\n**REASON:** different", False, "different"),
    ("match = yes", True, ""), ("MATCH: true\nMATCH: false", None, ""),
    ("The answers match.", None, ""), ("MATCH: maybe", None, ""),
])
def test_parse_reward(reply, expected, reason):
    assert parse_reward_reply(reply) == (expected, reason)


async def test_llm_judge_eval_and_reward_prompts(tmp_path):
    model = FakeModel({"the Seine river": "[CORRECT]", "Thames": "[INCORRECT]", "???": "hmm, hard to say"})
    judge = LLMJudge(model, mode="eval", shortcut=False)
    v = await judge.judge("Which river?", "the Seine river", ["Seine", "Seine River"])
    assert v.correct is True and v.judge == "llm" and v.raw == "[CORRECT]"
    prompt = model.requests[0].messages[0].content
    assert "References: Seine | Seine River" in prompt and model.requests[0].stop == ()
    assert (await judge.judge("Which river?", "Thames", ["Seine"])).correct is False
    garbage = await judge.judge("Which river?", "???", ["Seine"])
    assert garbage.correct is None and garbage.raw == "hmm, hard to say" and garbage.score is None
    reward = LLMJudge(FakeModel({"Seine": "MATCH: true\nREASON: equal"}), mode="reward", shortcut=False)
    rv = await reward.judge("Which river?", "Seine", ["Seine"])
    assert (rv.correct, rv.reason) == (True, "equal")
    assert "Gold answers: Seine" in reward.policy.requests[0].messages[0].content


async def test_llm_judge_cache_shortcut_and_give_up(tmp_path):
    model = FakeModel({"Seine River!": "[CORRECT]", "Loire": "[INCORRECT]", "odd": "???"})
    cache = str(tmp_path / "judge.sqlite")
    judge = LLMJudge(model, cache=cache)
    for _ in range(2):
        assert (await judge.judge("Which river?", "Loire", ["Seine"])).correct is False
    assert judge.calls == 1 and judge.cache_hits == 1
    again = LLMJudge(model, cache=cache)  # a new process: still no call
    assert (await again.judge("Which river?", "Loire", ["Seine"])).correct is False and again.calls == 0
    assert (await again.judge("Which river?", "Loire", ["Seine", "Loire?"])).correct is True  # shortcut
    assert again.calls == 0
    for _ in range(2):  # unparseable replies are not cached
        assert (await again.judge("Which river?", "odd", ["Seine"])).correct is None
    assert again.calls == 2
    gave_up = await again.judge("q", GIVE_UP, ["Seine"])
    assert gave_up.correct is False and gave_up.reason == "gave up" and again.calls == 2
    other_mode = LLMJudge(FakeModel({"Loire": "MATCH: false"}), mode="reward", cache=cache)
    assert (await other_mode.judge("Which river?", "Loire", ["Seine"])).correct is False
    assert other_mode.calls == 1  # the mode is part of the key


async def test_llm_judge_failing_policy_is_unparseable_not_a_crash():
    judge = LLMJudge(FakeModel({}, fail=True))
    v = await judge.judge("q", "something", ["else"])
    assert v.correct is None and "failed" in v.reason


async def test_llm_judge_through_a_policy_spec_and_a_config(tmp_path):
    judge = JUDGE.build({"name": "llm", "mode": "reward",
                         "policy": {"name": "scripted", "scripts": {"Who?": ["MATCH: true\nREASON: ok"]}}})
    assert (await judge.judge("Who?", "Ada", ["Ada Lovelace"])).correct is True
    assert judge.identity == {"name": "scripted", "scripts": {"Who?": ["MATCH: true\nREASON: ok"]}}
    cfg = tmp_path / "d.yaml"
    cfg.write_text("stage: distill\ndataset: {name: jsonl, path: x.jsonl}\n"
                   "judge: {name: llm, mode: eval, policy: {name: openai, model: m, api_key_env: K}}\n")
    loaded = load_config(cfg, expect="distill")
    assert loaded.judge.name == "llm" and loaded.judge.options["policy"]["model"] == "m"


async def test_fixture_judge_and_judge_many():
    judge = FixtureJudge(verdicts={"Paris": True, "Lyon": False, "Nice": None}, default="rule")
    items = [("q", "paris", ["x"]), ("q", "Lyon", ["Lyon"]), ("q", "Nice", ["Nice"]), ("q", "Seine", ["Seine"])]
    out = await judge_many(judge, items, concurrency=2)
    assert [v.correct for v in out] == [True, False, None, True]
    assert out[2].raw and len(judge.calls) == 4
    fixed = FixtureJudge(default=False)
    assert (await fixed.judge("q", "Seine", ["Seine"])).correct is False
    with pytest.raises(ConfigError):
        FixtureJudge(default="maybe")
