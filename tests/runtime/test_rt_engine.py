"""The episode engine (pure state machine) and the async driver.

Run: .venv/bin/pytest tests/runtime/test_rt_engine.py -q
"""

from __future__ import annotations

import asyncio
import json

import pytest

from deepmmsearch.agent.loop import Event, run_episode, run_episodes
from deepmmsearch.agent.state import Corrective, Episode, Finished, ToolRequest
from deepmmsearch.config import Limits
from deepmmsearch.policies.base import Generation
from deepmmsearch.policies.scripted import ScriptedPolicy
from deepmmsearch.prompts import COMPACT, PAPER
from deepmmsearch.types import SCHEMA_VERSION, SearchHit, ToolCall, Trajectory, read_jsonl

from .rt_tools import ANSWER, BAD, CROP, TEXT, WHOLE, R, make_toolbox

IMG = "tests/fixtures/scene.png"


def _call(kind="text_search", summary="some facts", **kw) -> ToolCall:
    hits = [SearchHit("t", "https://example.org/x", "s")]
    return ToolCall(kind, "fixture", hits=hits, summary=summary, **kw)


def _ep(**limits) -> Episode:
    return Episode("What bird is this?", IMG, limits=Limits(**limits), episode_id="e1")


# --- the pure machine ------------------------------------------------------------------------


def test_step_kinds():
    ep = _ep()
    req = ep.step(CROP)
    assert isinstance(req, ToolRequest)
    assert (req.kind, req.query, req.whole_image, req.box, req.turn_index) == (
        "image_search", "the white bird", False, None, 0)
    obs = ep.observe(_call("image_search", "It is a great egret."))
    assert obs.startswith("<information>It is a great egret.</information>")
    assert "Question: What bird is this?" in obs  # the after-image-search follow-up
    assert isinstance(ep.step(BAD), Corrective)
    assert isinstance(ep.step(TEXT), ToolRequest)
    ep.observe(_call())
    fin = ep.step(ANSWER)
    assert fin == Finished("131 to 170 cm", "answer")
    assert ep.done and ep.answer == "131 to 170 cm"
    traj = ep.trajectory()
    assert [t.action.kind for t in traj.turns] == ["image_search", "invalid", "text_search", "answer"]
    assert traj.stop_reason == "answer" and traj.metadata["prompts"] == "paper-1"
    assert traj.metadata["limits"]["max_tool_calls"] == 10


def test_misuse_raises():
    ep = _ep()
    with pytest.raises(RuntimeError):
        ep.observe(_call())
    ep.step(TEXT)
    with pytest.raises(RuntimeError):
        ep.step(TEXT)  # the pending call was never observed
    ep.observe(_call())
    ep.step(ANSWER)
    with pytest.raises(RuntimeError):
        ep.step(ANSWER)


def test_whole_image_and_self_box_requests():
    ep = _ep(max_image_searches=2)
    req = ep.step(WHOLE)
    assert req.whole_image and req.query == "<img>" and req.note is None
    ep.observe(_call("image_search"))
    req = ep.step(R + "<img_search>[1, 2, 30, 40]</img_search>")
    assert not req.whole_image and req.box is not None and req.box.as_list() == [1, 2, 30, 40]


def test_ten_tool_calls_then_budget_observation():
    ep = _ep(max_turns=30)
    for i in range(10):
        assert isinstance(ep.step(TEXT), ToolRequest), i
        obs = ep.observe(_call())
    # the 10th observation already says so, without claiming the search was refused
    assert "Budget: all 10 tool calls are used. Answer now" in obs
    assert "That search was not run" not in obs
    step = ep.step(TEXT)
    assert isinstance(step, Corrective)
    assert "That search was not run" in step.observation and "tool-call budget (10)" in step.observation
    assert ep.counters.tool_calls == 10
    assert ep.turns[-1].tool_call is None
    assert isinstance(ep.step(ANSWER), Finished)


def test_one_image_search():
    ep = _ep()
    ep.step(CROP)
    ep.observe(_call("image_search"))
    for second in (WHOLE, CROP):
        step = ep.step(second)
        assert isinstance(step, Corrective), second
        assert "image search may be used once per question" in step.observation
    assert ep.counters.image_searches == 1
    assert isinstance(ep.step(TEXT), ToolRequest)  # text search is still allowed


def test_image_search_budget_is_configurable():
    ep = _ep(max_image_searches=2)
    for _ in range(2):
        assert isinstance(ep.step(CROP), ToolRequest)
        ep.observe(_call("image_search"))
    assert "2 times per question" in ep.step(CROP).observation


@pytest.mark.parametrize("limits,turn,needle", [
    ({"allow_image_search": False}, CROP, "image search is not available"),
    ({"max_image_searches": 0}, WHOLE, "image search is not available"),
    ({"allow_text_search": False}, TEXT, "text search is not available"),
    ({"max_tool_calls": 0}, TEXT, "tool-call budget (0)"),
])
def test_disabled_tools(limits, turn, needle):
    step = _ep(**limits).step(turn)
    assert isinstance(step, Corrective) and needle in step.observation


def test_text_search_budget():
    ep = _ep(max_text_searches=2)
    for _ in range(2):
        assert isinstance(ep.step(TEXT), ToolRequest)
        ep.observe(_call())
    step = ep.step(TEXT)
    assert isinstance(step, Corrective) and "text-search budget (2)" in step.observation
    assert isinstance(ep.step(CROP), ToolRequest)  # image search has its own budget


def test_turn_limit():
    ep = _ep(max_turns=3)
    ep.step(TEXT)
    ep.observe(_call())
    ep.step(TEXT)
    obs = ep.observe(_call())
    assert "Budget: the next turn is the last one." in obs and "not run" not in obs
    fin = ep.step(TEXT)
    assert fin == Finished(None, "max_turns")
    assert ep.counters.tool_calls == 2 and len(ep.turns) == 3
    assert ep.trajectory().stop_reason == "max_turns"


def test_answer_on_last_turn_is_kept():
    ep = _ep(max_turns=2)
    ep.step(TEXT)
    ep.observe(_call())
    assert ep.step(ANSWER) == Finished("131 to 170 cm", "answer")


def test_token_budget():
    ep = _ep(max_response_tokens=100, max_new_tokens_per_turn=64)
    assert ep.max_new_tokens() == 64
    assert isinstance(ep.step(TEXT, n_tokens=60), ToolRequest)
    ep.observe(_call())
    assert ep.tokens_left == 40 and ep.max_new_tokens() == 40
    assert ep.step(TEXT, n_tokens=40) == Finished(None, "token_budget")
    assert ep.counters.response_tokens == 100


def test_token_count_estimated_without_n_tokens():
    ep = _ep()
    ep.step("x" * 400)
    assert ep.counters.response_tokens == 100


def test_invalid_actions_corrected_then_stopped():
    ep = _ep(max_invalid_actions=2)
    for i in range(2):
        step = ep.step(BAD)
        assert isinstance(step, Corrective), i
        assert "Your last turn could not be used (no action tag)" in step.observation
        assert step.observation.startswith("<information>")
        assert ep.turns[-1].observation == step.observation
    assert ep.step(BAD) == Finished(None, "invalid_actions")
    assert ep.counters.invalid_total == 3


def test_invalid_counter_resets_after_a_valid_turn():
    ep = _ep(max_invalid_actions=1, max_turns=20)
    for _ in range(3):
        assert isinstance(ep.step(BAD), Corrective)
        assert isinstance(ep.step(TEXT), ToolRequest)
        ep.observe(_call())
    assert ep.counters.invalid_total == 3 and not ep.done


def test_zero_invalid_actions_allowed():
    assert _ep(max_invalid_actions=0).step(BAD) == Finished(None, "invalid_actions")


def test_crop_search_disabled_searches_whole_image():
    ep = _ep(crop_search=False)
    req = ep.step(CROP)
    assert req.whole_image and "crop search is disabled" in req.note
    call = _call("image_search", whole_image=True)
    obs = ep.observe(call)
    assert call.note == req.note
    assert obs.startswith("<information>(crop search is disabled in this run: the whole image was searched)")


def test_failed_and_empty_tool_calls_become_observations():
    ep = _ep()
    ep.step(TEXT)
    obs = ep.observe(ToolCall("text_search", "fixture", query="q", error="HTTP 503"))
    assert "The text search failed: HTTP 503. No results." in obs
    ep.step(CROP)
    obs = ep.observe(ToolCall("image_search", "fixture"))
    assert "The image search found no results." in obs


def test_compact_prompts_have_no_follow_up():
    ep = Episode("q?", IMG, prompts=COMPACT)
    assert ep.prompt[0].content == "<image>q?" and ep.prompt[0].images == (IMG,)
    ep.step(TEXT)
    assert ep.observe(_call(summary="facts")) == "<information>facts</information>"


def test_no_image_prompt():
    ep = Episode("q?", None, prompts=PAPER)
    assert "<image>" not in ep.prompt[0].content and ep.prompt[0].images == ()


def test_sources_prefer_hits_with_the_answer():
    ep = _ep()
    ep.step(TEXT)
    ep.observe(ToolCall("text_search", "f", hits=[
        SearchHit("Other", "https://a", "nothing"), SearchHit("Egret", "https://b", "span 131 to 170 cm")],
        summary="s"))
    ep.step(ANSWER)
    assert ep.sources() == ["https://b"]


# --- the driver --------------------------------------------------------------------------------


async def test_driver_runs_tools_and_emits_events():
    box = make_toolbox()
    policy = ScriptedPolicy(turns=[CROP, TEXT, ANSWER])
    events: list[Event] = []
    traj = await run_episode(_ep(), policy, box, on_event=events.append)
    assert traj.stop_reason == "answer" and traj.answer == "131 to 170 cm"
    assert [e.kind for e in events] == [
        "turn", "tool_start", "observation", "turn", "tool_start", "observation", "turn", "done"]
    assert box.image_search.calls == [(84, 72)]  # the padded crop of the fixed box
    assert box.text_search.calls == ["great egret wingspan"]
    assert traj.sources == ["https://example.org/great-egret"]
    assert traj.wall_s > 0


async def test_driver_budget_means_no_tool_runs():
    box = make_toolbox()
    policy = ScriptedPolicy(turns=[CROP, WHOLE, ANSWER])
    traj = await run_episode(_ep(), policy, box)
    assert len(box.image_search.calls) == 1
    assert traj.turns[1].tool_call is None and "once per question" in traj.turns[1].observation


async def test_driver_async_event_hook():
    seen = []

    async def hook(event):
        await asyncio.sleep(0)
        seen.append(event.kind)

    await run_episode(_ep(), ScriptedPolicy(turns=[ANSWER]), make_toolbox(), on_event=hook)
    assert seen == ["turn", "done"]


class _Exploding:
    name = "boom"

    def __init__(self, after: int) -> None:
        self.after = after

    async def generate(self, request):
        if request.turn_index >= self.after:
            raise ConnectionError("server went away")
        return Generation(TEXT, n_tokens=10)


async def test_policy_error_stops_the_episode():
    traj = await run_episode(_ep(), _Exploding(after=1), make_toolbox())
    assert traj.stop_reason == "policy_error"
    assert traj.metadata["policy_error"] == "ConnectionError: server went away"
    assert len(traj.turns) == 1 and traj.turns[0].tool_call is not None


async def test_run_episodes_keeps_order_and_calls_on_done():
    done = []
    eps = [Episode(f"q{i}", IMG, episode_id=f"e{i}") for i in range(6)]
    policy = ScriptedPolicy(scripts={"e0": [TEXT, ANSWER], "*": [ANSWER]})
    trajs = await run_episodes(eps, policy, make_toolbox(), concurrency=2, on_done=done.append)
    assert [t.id for t in trajs] == [f"e{i}" for i in range(6)]
    assert len(trajs[0].turns) == 2 and all(len(t.turns) == 1 for t in trajs[1:])
    assert sorted(t.id for t in done) == sorted(t.id for t in trajs)


async def test_run_episodes_concurrency_is_real():
    from deepmmsearch.tools.text.fixture import FixtureTextSearch

    box = make_toolbox(text_search=FixtureTextSearch(responses={"*": []}, latency_s=0.2))
    eps = [Episode(f"q{i}", None, episode_id=f"e{i}") for i in range(10)]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await run_episodes(eps, ScriptedPolicy(turns=[TEXT, ANSWER]), box, concurrency=10)
    assert loop.time() - t0 < 1.0  # 10 × 0.2 s sequentially


# --- trajectory records --------------------------------------------------------------------------


async def test_trajectory_jsonl_round_trip(tmp_path):
    box = make_toolbox(artifacts_dir=tmp_path / "art")
    policy = ScriptedPolicy(turns=[BAD, CROP, TEXT, ANSWER])
    traj = await run_episode(_ep(), policy, box)
    path = tmp_path / "t.jsonl"
    path.write_text(traj.to_json() + "\n\n" + traj.to_json() + "\n", encoding="utf-8")
    rows = read_jsonl(str(path), Trajectory)
    assert len(rows) == 2
    back = rows[0]
    assert back.to_dict() == traj.to_dict()
    assert back.schema_version == SCHEMA_VERSION == json.loads(traj.to_json())["schema_version"]
    call = back.turns[1].tool_call
    assert call.box is not None and call.grounder == "fixed" and call.crop_path.endswith("turn1_crop.png")
    assert back.prompt[0].images == (IMG,) and isinstance(back.prompt[0].images, tuple)
    assert back.messages()[-1].role == "assistant" and back.turns[0].action.error == "no action tag"


def test_trajectory_from_dict_ignores_unknown_fields():
    traj = _ep().trajectory()
    data = traj.to_dict() | {"field_from_the_future": 1}
    assert Trajectory.from_dict(data).to_dict() == traj.to_dict()
