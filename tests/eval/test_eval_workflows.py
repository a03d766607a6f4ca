"""The three workflows on fixture tools and scripted policies."""

from __future__ import annotations

from dataclasses import replace

from deepmmsearch.agent.toolbox import Toolbox
from deepmmsearch.config import Limits
from deepmmsearch.eval.workflows import WorkflowRuntime, agent, direct, rag
from deepmmsearch.policies.scripted import ScriptedPolicy
from deepmmsearch.prompts import PAPER
from deepmmsearch.protocol import IMAGE_PLACEHOLDER
from deepmmsearch.tools.grounding.basic import FixedGrounder
from deepmmsearch.tools.image.fixture import FixtureImageSearch
from deepmmsearch.tools.summarize import ExtractiveSummarizer
from deepmmsearch.tools.text.fixture import FixtureTextSearch
from deepmmsearch.types import Sample

from .eval_world import IMAGE_HITS, TEXT_HITS

R = "<reason>r</reason>"


def _toolbox() -> Toolbox:
    return Toolbox(text_search=FixtureTextSearch(responses=TEXT_HITS),
                   image_search=FixtureImageSearch(responses=IMAGE_HITS),
                   grounder=FixedGrounder(box=[20, 20, 90, 80]), summarizer=ExtractiveSummarizer())


def _rt(kind: str, turns: list[str], limits: Limits | None = None, **kw) -> WorkflowRuntime:
    return WorkflowRuntime(kind, kind, ScriptedPolicy(turns=turns), kw.get("toolbox") or _toolbox(),
                           PAPER, limits or Limits())


def _sample(scene_image: str) -> Sample:
    return Sample(id="s1", question="What is the wingspan of this bird?", answers=["131 to 170 cm"],
                  image=scene_image)


async def test_direct_runs_no_tool_even_when_asked(scene_image):
    rt = _rt("direct", [R + "<text_search>egret</text_search>", R + "<answer>white</answer>"])
    traj = await direct(rt, _sample(scene_image), {"id": "s1"})
    assert traj.answer == "white" and traj.stop_reason == "answer"
    assert traj.tool_calls == [] and rt.toolbox.text_search.calls == []
    assert "not available" in traj.turns[0].observation
    assert traj.prompt[0].content.startswith(PAPER.direct.split(IMAGE_PLACEHOLDER)[0][:40])
    assert traj.metadata["workflow"] == "direct" and traj.metadata["limits"]["max_tool_calls"] == 0


async def test_rag_is_one_whole_image_search_then_one_text_search(scene_image):
    rt = _rt("rag", ["<text_search>great egret wingspan</text_search>",
                     R + "<answer>131 to 170 cm</answer>"])
    traj = await rag(rt, _sample(scene_image), {"id": "s1"})
    assert traj.answer == "131 to 170 cm" and traj.stop_reason == "answer"
    (fixed,) = traj.metadata["fixed_calls"]
    assert fixed["kind"] == "image_search" and fixed["whole_image"] is True
    assert rt.toolbox.image_search.calls == [(160, 120)]  # the whole fixture scene
    assert rt.toolbox.text_search.calls == ["great egret wingspan"]
    # the image-search summary is in the first prompt; the text results in the answer prompt
    assert "Great egret in flight" in traj.prompt[0].content
    assert "131 to 170 cm" in traj.turns[0].observation
    assert [t.action.kind for t in traj.turns] == ["text_search", "answer"]
    assert "rag_query_fallback" not in traj.metadata


async def test_rag_falls_back_to_the_question_and_reports_bad_answers(scene_image):
    rt = _rt("rag", [R + "<answer>too early</answer>", "no tags at all"])
    traj = await rag(rt, _sample(scene_image), {})
    assert rt.toolbox.text_search.calls == ["What is the wingspan of this bird?"]
    assert "answer" in traj.metadata["rag_query_fallback"]
    assert traj.answer is None and traj.stop_reason == "invalid_actions"


async def test_rag_policy_failure_is_recorded(scene_image):
    class Broken:
        name = "broken"

        async def generate(self, request):
            raise ConnectionError("server down")

    rt = WorkflowRuntime("rag", "rag", Broken(), _toolbox(), PAPER, Limits())
    traj = await rag(rt, _sample(scene_image), {})
    assert traj.stop_reason == "policy_error" and "server down" in traj.metadata["policy_error"]


AGENT = [R + "<img_search>the white bird</img_search>",
         R + "<text_search>great egret wingspan</text_search>",
         R + "<text_search>great egret size</text_search>",
         R + "<answer>131 to 170 cm</answer>"]


async def test_agent_and_its_ablations(scene_image):
    full = await agent(_rt("agent", AGENT), _sample(scene_image), {})
    assert [c.kind for c in full.tool_calls] == ["image_search", "text_search", "text_search"]
    assert full.tool_calls[0].whole_image is False and full.tool_calls[0].box is not None

    no_crop = await agent(_rt("agent", AGENT, replace(Limits(), crop_search=False)),
                          _sample(scene_image), {})
    assert no_crop.tool_calls[0].whole_image is True and "crop search is disabled" in no_crop.tool_calls[0].note

    rt = _rt("agent", AGENT, replace(Limits(), max_text_searches=1))
    one = await agent(rt, _sample(scene_image), {})
    assert [c.kind for c in one.tool_calls] == ["image_search", "text_search"]
    assert rt.toolbox.text_search.calls == ["great egret wingspan"]
    assert "text-search budget" in one.turns[2].observation
    assert one.answer == "131 to 170 cm"
