"""Distillation filters, balanced sampling, the resumable journal."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from deepmmsearch.agent.state import Episode
from deepmmsearch.data.filters import (
    balanced_sample,
    check_trajectory,
    search_required,
    tool_pattern,
)
from deepmmsearch.data.journal import Journal
from deepmmsearch.data.taxonomy import TaxonomyConfig, build_labeller, keyword_category
from deepmmsearch.policies.base import Generation
from deepmmsearch.protocol import GIVE_UP
from deepmmsearch.types import Sample, SearchHit, ToolCall

R = "<reason>r</reason>"


def play(turns: list[str]):
    ep = Episode("Which river?", None)
    for text in turns:
        step = ep.step(text)
        if ep.done:
            break
        if getattr(step, "kind", None) in ("text_search", "image_search"):
            ep.observe(ToolCall(step.kind, "fixture", query=step.query,
                                hits=[SearchHit("t", "u", "s")], summary="found"))
    return ep.trajectory()


def test_checks_in_order():
    assert check_trajectory(play([f"{R}<answer>Seine</answer>"])) is None
    assert check_trajectory(play(["Seine", f"{R}<answer>Seine</answer>"])) == "invalid_action"
    assert check_trajectory(play([f"{R}<text_search>q{i}</text_search>" for i in range(10)])) == "too_many_turns"
    assert check_trajectory(play([f"{R}<answer>{GIVE_UP}</answer>"])) == "gave_up"
    assert check_trajectory(play([f"{R}<text_search>a</text_search>", f"{R}<answer>x</answer>"]), max_turns=2) == "too_many_turns"
    two_images = play([f"{R}<img_search><img></img_search>", f"{R}<img_search><img></img_search>",
                       f"{R}<answer>x</answer>"])
    assert check_trajectory(two_images) == "bad_format"  # the second search was refused
    failed = play([f"{R}<answer>Seine</answer>"])
    failed.stop_reason = "policy_error"
    assert check_trajectory(failed) == "policy_error"


def test_search_required_and_tool_pattern():
    free = play([f"{R}<answer>Seine</answer>"])
    both = play([f"{R}<img_search><img></img_search>", f"{R}<text_search>q</text_search>", f"{R}<answer>x</answer>"])
    assert (search_required(free), tool_pattern(free)) == (False, "none")
    assert (search_required(both), tool_pattern(both)) == (True, "image+text")


@dataclass
class Item:
    id: int
    category: str
    search_required: bool


def pool(spec: dict[tuple[str, bool], int]) -> list[Item]:
    out = []
    for (cat, search), n in spec.items():
        out += [Item(len(out) + i, cat, search) for i in range(n)]
    return out


def test_balanced_sample_uniform_and_ratio():
    items = pool({("a", True): 50, ("b", True): 3, ("c", True): 20, ("a", False): 40, ("b", False): 40,
                  ("c", False): 2})
    chosen, rep = balanced_sample(items, 30, search_ratio=0.5, seed=1)
    assert len(chosen) == 30 and rep.selected == {"search": 15, "free": 15}
    search = Counter(x.category for x in chosen if x.search_required)
    free = Counter(x.category for x in chosen if not x.search_required)
    assert search == {"a": 6, "b": 3, "c": 6}  # b gives all it has, a and c share the rest
    assert free == {"a": 7, "b": 6, "c": 2} or free == {"a": 6, "b": 7, "c": 2}
    again, _ = balanced_sample(items, 30, search_ratio=0.5, seed=1)
    assert [x.id for x in again] == [x.id for x in chosen]
    assert [x.id for x in chosen] == sorted(x.id for x in chosen)  # input order kept


def test_balanced_sample_shortfall_fill_and_extremes():
    items = pool({("a", True): 3, ("a", False): 20, ("b", False): 20})
    chosen, rep = balanced_sample(items, 20, search_ratio=0.5)
    assert rep.shortfall == {"search": 7, "free": 0} and len(chosen) == 13
    filled, rep2 = balanced_sample(items, 20, search_ratio=0.5, fill=True)
    assert len(filled) == 20 and rep2.filled == 7
    only_free, _ = balanced_sample(items, 10, search_ratio=0.0)
    assert not any(x.search_required for x in only_free) and len(only_free) == 10
    rnd, _ = balanced_sample(items, 10, search_ratio=0.3, per_category="random", seed=5)
    assert sum(x.search_required for x in rnd) == 3


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.tuples(st.sampled_from("abcde"), st.booleans()), st.integers(0, 12), min_size=1),
       st.integers(0, 40), st.sampled_from([0.0, 0.3, 0.5, 1.0]), st.integers(0, 3))
def test_balanced_sample_properties(spec, target, ratio, seed):
    items = pool(spec)
    chosen, _ = balanced_sample(items, target, search_ratio=ratio, seed=seed)
    assert len({x.id for x in chosen}) == len(chosen) <= target
    n_search = sum(x.search_required for x in chosen)
    assert n_search == min(round(target * ratio), sum(x.search_required for x in items))
    for half in (True, False):  # uniform: a category below the max count has given all it has
        got = Counter(x.category for x in chosen if x.search_required is half)
        have = Counter(x.category for x in items if x.search_required is half)
        if got:
            top = max(got.values())
            assert all(got[c] >= top - 1 or got[c] == have[c] for c in have)


def test_journal_resume_torn_line_and_duplicates(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:
        assert j.append("a", {"v": 1}) and j.append("b", {"v": 2})
        assert not j.append("a", {"v": 3})
    with open(path, "a") as fh:  # a process killed mid-write, and a duplicate from an old bug
        fh.write(json.dumps({"id": "b", "v": 9}) + "\n" + '{"id": "c", "v"')
    with Journal(path) as j:
        assert j.repaired == 1 and sorted(j.records) == ["a", "b"] and j.records["b"]["v"] == 2
        j.append("c", {"v": 4})
    lines = path.read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["a", "b", "b", "c"]
    with Journal(path) as j:
        assert j.repaired == 0 and len(j) == 3


async def test_taxonomy_labellers():
    rule = build_labeller(TaxonomyConfig(method="rule", mapping={"bird": "animals"}))
    assert await rule.label(Sample("1", "q", ["a"], category="bird")) == ("animals", "dataset")
    assert await rule.label(Sample("2", "What breed is this dog?", ["a"])) == ("animals", "keywords")
    assert await rule.label(Sample("3", "Hmm?", ["a"])) == ("other", "default")
    assert keyword_category("Who painted this painting?", ["art and culture", "other"], "other") == "art and culture"

    class Model:
        name, model = "m", "m1"

        def __init__(self):
            self.n = 0

        async def generate(self, request):
            self.n += 1
            return Generation("Category: Sports." if "team" in request.question else "no idea")

    model = Model()
    llm = build_labeller(TaxonomyConfig(method="auto", cache=None), policy=model)
    assert await llm.label(Sample("4", "Which team plays here?", ["a"])) == ("sports", "llm")
    assert await llm.label(Sample("5", "What?", ["a"])) == ("other", "unparsed")
    assert await llm.label(Sample("6", "What?", ["a"], category="own")) == ("own", "dataset")
    assert model.n == 2 and llm.counts == {"llm": 1, "unparsed": 1, "dataset": 1}

    class Seeing(Model):
        async def generate(self, request):
            self.request = request
            return Generation("plants and fungi")

    seeing = Seeing()
    vis = build_labeller(TaxonomyConfig(method="llm", policy={"name": "scripted", "turns": ["x"]},
                                        with_image=True), policy=seeing)
    assert await vis.label(Sample("7", "What is it?", ["a"], image="pic.png")) == ("plants and fungi", "llm")
    msg = seeing.request.messages[0]
    assert msg.images == ("pic.png",) and msg.content.startswith("<image>")


def test_journal_with_fsync_interval_still_flushes_every_line(tmp_path):
    j = Journal(tmp_path / "j.jsonl", fsync_interval_s=60)
    j.append("a", {"v": 1})
    j.append("b", {"v": 2})
    assert len((tmp_path / "j.jsonl").read_text().splitlines()) == 2  # visible before close
    j.close()
