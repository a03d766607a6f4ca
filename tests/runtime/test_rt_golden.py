"""A scripted-policy episode over local tools, compared with a golden trajectory.

The episode: text search → cropped image search → text search → answer, with the fixture
backends, the fixed grounder and the extractive summariser. Volatile fields (latencies, wall
time) are removed before comparing.

Run: .venv/bin/pytest tests/runtime/test_rt_golden.py -q
Regenerate after an intended change: UPDATE_GOLDEN=1 .venv/bin/pytest tests/runtime/test_rt_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from deepmmsearch.agent.loop import run_episode
from deepmmsearch.agent.state import Episode
from deepmmsearch.config import Limits
from deepmmsearch.policies.scripted import ScriptedPolicy
from deepmmsearch.protocol import format_score

from .rt_tools import make_toolbox

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden" / "runtime_episode.json"
VOLATILE = {"latency_s", "wall_s"}

SCRIPT = [
    ("<reason>The question needs the bird's wingspan; I will look it up.</reason>"
     "<text_search>great egret wingspan</text_search>"),
    ("<reason>I should confirm the bird is a great egret.</reason>"
     "<img_search>the white bird</img_search>"),
    ("<reason>It is a great egret. Where does it live?</reason>"
     "<text_search>great egret habitat</text_search>"),
    "<reason>The first search gave the wingspan.</reason><answer>131 to 170 cm</answer>",
]


def strip(obj):
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


async def test_golden_episode():
    ep = Episode("What is the wingspan of this bird?", "tests/fixtures/scene.png",
                 limits=Limits(), episode_id="golden-1", gold=["131-170 cm"])
    traj = await run_episode(ep, ScriptedPolicy(turns=SCRIPT), make_toolbox())
    got = strip(traj.to_dict())
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert got == want, "trajectory differs from the golden file; UPDATE_GOLDEN=1 to accept"
    # sanity, independent of the golden file
    assert [c.kind for c in traj.tool_calls] == ["text_search", "image_search", "text_search"]
    assert traj.tool_calls[1].box is not None and not traj.tool_calls[1].whole_image
    assert format_score(traj) == 1.0
