"""Distillation over a small SimWeb world with the expert teacher and the real local tools:
the SFT set is balanced 50:50 and uniform over categories, as configured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepmmsearch.config import load_config
from deepmmsearch.data.distill import run_distill

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    build = pytest.importorskip("deepmmsearch.simweb.build")
    root = tmp_path_factory.mktemp("simweb") / "world"
    build.build_world(root, seed=0, entities=120, progress=False)
    return root


def simweb_config(world: Path, out: Path, *overrides: str):
    w = str(world)
    return load_config(ROOT / "configs/distill/simweb_small.yaml", [
        f"dataset.path={w}", "dataset.split=null", f"teacher.policy.world={w}",
        "teacher.policy.p_wrong_answer=0.1", "teacher.policy.p_unneeded_search=0.1",
        f"teacher.text_search.index={w}/index/text", f"teacher.image_search.index={w}/index/image",
        f"teacher.grounder.world={w}", f"teacher.cache.path={out / 'tools.sqlite'}",
        f"out_dir={out / 'run'}", *overrides], expect="distill")


def test_simweb_expert_distillation_matches_targets(world, tmp_path):
    res = run_distill(simweb_config(world, tmp_path, "target_size=24", "parquet=false"), progress=False)
    s = res.stats
    assert res.samples == 120 and res.ran == 120
    assert s["failed"]["judge_rejected"] > 0  # the expert's wrong answers (p_wrong_answer) are filtered
    assert res.passed == 120 - sum(s["failed"].values())
    assert res.selected == 24 and s["search_ratio"]["selected"] == 0.5
    counts = [v["selected"]["search"] + v["selected"]["free"] for v in s["categories"].values()]
    assert set(s["categories"]) == {"animals", "buildings and architecture", "plants and fungi",
                                    "products and brands", "vehicles and transport"}
    assert max(counts) - min(counts) <= 1 and sum(counts) == 24
    rows = [json.loads(x) for x in (Path(res.sft_dir) / "sft.jsonl").read_text().splitlines()]
    for row in rows:
        traj = row["trajectory"]
        calls = [t["tool_call"] for t in traj["turns"] if t["tool_call"]]
        assert row["search_required"] == bool(calls)
        assert all(not c["error"] and c["hits"] for c in calls)  # real tool calls, not fakes
        assert traj["verdict"]["correct"] is True and len(traj["turns"]) < 10
        tool_msgs = [m["content"] for m in row["messages"] if m["role"] == "tool"]
        assert len(tool_msgs) == len(calls) and all(m.startswith("<information>") for m in tool_msgs)
    ratio_70 = run_distill(simweb_config(world, tmp_path, "target_size=20", "search_ratio=0.7",
                                         "parquet=false", f"sft_dir={tmp_path / 'r70'}"),
                           run=False, progress=False)
    assert ratio_70.stats["search_ratio"]["selected"] == 0.7 and ratio_70.selected == 20


def test_hold_out_parts_split_the_entities(world):
    """`hold_out` + `part`: the two parts partition the split by entity, and bad values are errors."""
    from deepmmsearch.data.benchmarks.base import DatasetError
    from deepmmsearch.registry import DATASET

    def load_dataset(spec):
        return list(DATASET.build(spec))

    spec = {"name": "simweb", "path": str(world), "split": "train"}
    every = load_dataset(spec)
    rest = load_dataset({**spec, "hold_out": 0.3})
    held = load_dataset({**spec, "hold_out": 0.3, "part": "held-out"})
    assert rest and held and len(rest) + len(held) == len(every)
    assert not {s.metadata["entity"] for s in rest} & {s.metadata["entity"] for s in held}
    assert [s.id for s in load_dataset({**spec, "hold_out": 0.3, "part": "held-out"})] == [s.id for s in held]
    for bad in ({"hold_out": 1.5}, {"hold_out": 0.1, "part": "rl"}):
        with pytest.raises(DatasetError):
            load_dataset({**spec, **bad})
