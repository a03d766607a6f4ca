"""veRL's reward hook: 0.9·judge + 0.1·format, from our loop's turns or a decoded response."""

from __future__ import annotations

import inspect

import pytest
import yaml

pytest.importorskip("verl.experimental.agent_loop",
                    reason="veRL is tested in its own environment: make test-verl")

from deepmmsearch.train.verl.reward import compute_score, split_turns

GOOD = ["<reason>which bird?</reason><img_search>the white bird</img_search>",
        "<reason>an egret</reason><text_search>great egret wingspan</text_search>",
        "<reason>found it</reason><answer>131 to 170 cm</answer>"]
INFO = {"question": "What is the wingspan of this bird?", "answers": ["131 to 170 cm", "1.3-1.7 m"]}


def loop_info(turns, answer, **extra):
    return {**INFO, "dmm_turns": turns, "dmm_answer": answer, **extra}


async def test_correct_well_formed_episode_scores_one():
    r = await compute_score("fvqa", "ignored", "131 to 170 cm", loop_info(GOOD, "131 to 170 cm"))
    assert r["score"] == pytest.approx(1.0)
    assert r | {"score": 1.0} == {"score": 1.0, "correctness": 1.0, "format": 1.0, "answered": 1.0,
                                  "give_up": 0.0, "judge_unparseable": 0.0, "tool_calls": 2.0,
                                  "image_searches": 1.0, "text_searches": 1.0, "turns": 3.0}
    assert all(isinstance(v, float) for v in r.values())


@pytest.mark.parametrize("turns,answer,score,fmt", [
    (GOOD[:2] + ["<reason>guess</reason><answer>2 m</answer>"], "2 m", 0.1, 1.0),  # wrong answer
    (GOOD[:2] + ["<answer>131 to 170 cm</answer>"], None, 0.0, 0.0),  # no reason: no answer
    (["<reason>r</reason><img_search>a</img_search>",
      "<reason>r</reason><img_search><img></img_search>", GOOD[2]],
     "131 to 170 cm", 0.9, 0.0),  # two image searches
    (GOOD[:2], None, 0.0, 0.0),  # stopped before answering
    (["<reason>r</reason><answer>Unable to answer due to lack of relevant information</answer>"],
     "Unable to answer due to lack of relevant information", 0.1, 1.0),  # gave up, well formed
])
async def test_score_components(turns, answer, score, fmt):
    r = await compute_score("fvqa", "", "131 to 170 cm", loop_info(turns, answer))
    assert r["score"] == pytest.approx(score) and r["format"] == fmt


async def test_tool_budget_in_the_format_score():
    turns = ["<reason>r</reason><text_search>q</text_search>"] * 3 + [GOOD[2]]
    r = await compute_score("fvqa", "", "x", loop_info(turns, "131 to 170 cm"), max_tool_calls=2)
    assert r["format"] == 0.0 and r["score"] == pytest.approx(0.9)


def test_split_turns_of_a_new_turn_template_response():
    decoded = (GOOD[0] + "\nuser\n<information>Great egret in flight.</information>\nThe "
               "<information> above summarises the image search.\nQuestion: q?\nassistant\n"
               + GOOD[1] + "\nuser\n<information>wingspan 131 to 170 cm</information>\nassistant\n"
               + GOOD[2])
    assert split_turns(decoded) == GOOD
    inline = GOOD[0] + "<information>x</information>\nfollow-up" + GOOD[1] + GOOD[2]
    assert len(split_turns(inline)) == 2  # inline layout without turn ids: use dmm_turns


async def test_decoded_response_path_and_json_aliases():
    decoded = (GOOD[0] + "\nuser\n<information>Great egret.</information>\nassistant\n"
               + GOOD[1] + "\nuser\n<information>131 to 170 cm</information>\nassistant\n"
               + "<reason>found it</reason><answer>1.3-1.7 m</answer>")
    r = await compute_score("fvqa", decoded, '["131 to 170 cm", "1.3-1.7 m"]',
                            {"question": INFO["question"]})
    assert r["score"] == pytest.approx(1.0) and r["turns"] == 3.0
    r = await compute_score("fvqa", "<reason>r</reason><answer>no idea</answer>", "Paris", {})
    assert r["score"] == pytest.approx(0.1) and r["answered"] == 1.0


async def test_llm_judge_from_a_judge_config(tmp_path):
    cfg = tmp_path / "judge.yaml"
    reply = "MATCH: true\nREASON: same range in metres"
    cfg.write_text(yaml.safe_dump({"judge": {"name": "llm", "mode": "reward",
                                             "policy": {"name": "scripted", "turns": [reply]}}}))
    answer = "about 1.3 to 1.7 metres"
    r = await compute_score("fvqa", "", "131 to 170 cm",
                            loop_info(GOOD[:2] + [f"<reason>r</reason><answer>{answer}</answer>"],
                                      answer), judge_config=str(cfg))
    assert r["correctness"] == 1.0 and r["judge_unparseable"] == 0.0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"judge": {"name": "llm", "mode": "reward",
                                             "policy": {"name": "scripted", "turns": ["hmm"]}}}))
    r = await compute_score("fvqa", "", "131 to 170 cm", loop_info(GOOD, "a paraphrase"),
                            judge_config=str(bad))
    assert r["correctness"] == 0.0 and r["judge_unparseable"] == 1.0


def test_loaded_the_way_verl_loads_it():
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    cfg = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": "pkg://deepmmsearch.train.verl.reward", "name": "compute_score",
        "reward_kwargs": {"judge": "rule", "format_weight": 0.1}}}})
    fn = get_custom_reward_fn(cfg)
    assert fn is not None and inspect.iscoroutinefunction(fn.func)
