"""SimWeb generation: determinism, held-out splits, layout, tiny-model-friendly text, the CLI."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from deepmmsearch.simweb.build import build_world
from deepmmsearch.simweb.facts import (
    ATTRIBUTES,
    PERSON_FACTS,
    answer_aliases,
    format_value,
    person_attribute,
)
from deepmmsearch.simweb.names import SYLLABLES
from deepmmsearch.simweb.world import QUESTION_TYPES, World, WorldError

LAYOUT = [
    "corpus.jsonl",
    "entities.jsonl",
    "image_pages.jsonl",
    "questions.jsonl",
    "scenes.jsonl",
    "world.json",
]


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files(tmp_path):
    a = build_world(tmp_path / "a", seed=3, entities=90, indexes=False, progress=False, jobs=1)
    b = build_world(tmp_path / "b", seed=3, entities=90, indexes=False, progress=False, jobs=2)
    c = build_world(tmp_path / "c", seed=4, entities=90, indexes=False, progress=False, jobs=1)
    ha, hb = _tree_hashes(tmp_path / "a"), _tree_hashes(tmp_path / "b")
    assert ha == hb and len(ha) > 130  # every picture, scene and file, whatever the jobs
    assert a == b and a["files"] == b["files"] and a["images_sha256"] == b["images_sha256"]
    assert c["files"]["entities.jsonl"] != a["files"]["entities.jsonl"]
    assert c["images_sha256"] != a["images_sha256"]


def test_layout_and_manifest(world_dir, world):
    for name in LAYOUT:
        assert (world_dir / name).is_file(), name
    for name in ("index/text", "index/image"):
        assert (world_dir / name).is_dir(), name
    m = world.manifest
    assert m["format"] == "simweb" and m["seed"] == 7
    assert sum(m["counts"]["entities"].values()) == len(world.entities) == 500
    for name, digest in m["files"].items():
        assert hashlib.sha256((world_dir / name).read_bytes()).hexdigest() == digest
    for e in world.entities.values():
        assert (world_dir / e.picture).is_file()
    for s in world.scenes.values():
        assert (world_dir / s.image).is_file() and 1 <= len(s.objects) <= 4


def test_no_held_out_entity_in_a_training_question(world):
    for q in world.questions.values():
        scene = world.scenes[q.scene]
        assert scene.split == q.split == world.entities[q.entity].split
        # every entity shown in the image, not only the target, belongs to the question's split
        assert {world.entities[o.entity].split for o in scene.objects} == {q.split}
    train = {q.entity for q in world.questions.values() if q.split == "train"}
    train |= {o.entity for s in world.scenes.values() if s.split == "train" for o in s.objects}
    held_out = {e.id for e in world.entities.values() if e.split in ("val", "test")}
    assert held_out and not train & held_out
    # every entity is asked about; training entities are the large majority
    assert {q.entity for q in world.questions.values()} == set(world.entities)
    counts = Counter(e.split for e in world.entities.values())
    assert counts["train"] > 0.8 * len(world.entities) and counts["test"] >= 40


def test_questions_are_benchmark_style(world):
    qs = list(world.questions.values())
    assert {q.type for q in qs} == set(QUESTION_TYPES)
    assert {q.search for q in qs} == {"none", "crop", "whole", "text"}
    for q in qs:
        e = world.entities[q.entity]
        assert q.answers and len(set(q.answers)) == len(q.answers)
        if q.type == "search-free":
            assert q.answers == [e.colour] and q.question.startswith("What colour is ")
            continue
        attr = e.attr(q.attribute)
        if q.type == "two-hop":  # the person the first hop names, then their fact
            assert attr.kind == "person" and not attr.dated and q.hop
            person = world.people[e.value(attr.key)]
            assert q.answers == [person.facts[q.hop]] and f"the {attr.word} of " in q.question
            assert q.question.endswith(" born?")
        else:
            assert q.hop is None and q.answers == answer_aliases(attr, e.value(attr.key))
        if q.type == "time-sensitive":
            assert attr.dated and q.answers[0] == format_value(attr, str(e.dated[attr.key][-1][1]))
        if q.search == "text":
            assert e.name in q.question
        else:
            assert e.name not in q.question and q.expression in q.question


def test_entity_names_are_syllables_and_pages_state_facts_plainly(world_dir, world):
    syllable = "|".join(SYLLABLES)
    names = [e.name for e in world.entities.values()]
    assert len(set(names)) == len(names)
    assert not set(names) & {p.split()[0] for p in world.people}  # no entity is called like a person
    assert all(re.fullmatch(f"(?:{syllable}){{2,3}}", n.lower()) for n in names)
    pages = {
        p["id"]: p for p in map(json.loads, (world_dir / "corpus.jsonl").read_text().splitlines())
    }
    assert all(set(p) == {"id", "title", "text", "url", "date"} for p in pages.values())
    for e in list(world.entities.values())[:50]:
        wiki = pages[f"wiki-{e.id}"]["text"]
        for a in ATTRIBUTES[e.category]:
            if not a.dated:
                assert a.sentence.format(name=e.name, value=format_value(a, e.facts[a.key])) in wiki
        attr = e.dated_attr()
        year, value = e.dated[attr.key][-1]
        latest = pages[f"news-{e.id}-{year}"]["text"]
        assert latest == attr.latest_sentence.format(
            name=e.name, value=format_value(attr, str(value)), year=year
        )
    kinds = Counter(pid.split("-")[0] for pid in pages)
    assert kinds["notes"] > 0.8 * len(world.entities) and kinds["city"] > 0  # distractors
    # every person an entity names has a page stating each of their facts plainly
    by_title = {p["title"]: p["text"] for p in pages.values() if p["id"].startswith("person-")}
    assert kinds["person"] == len(world.people) > 0
    for e in list(world.entities.values())[:50]:
        person = world.people[e.facts[person_attribute(e.category).key]]
        for f in PERSON_FACTS:
            assert f.sentence.format(name=person.name, value=person.facts[f.key]) in by_title[person.name]


def test_cli_build_info_and_user_index_commands(tmp_path, capsys):
    from deepmmsearch.cli import main

    out = tmp_path / "w"
    assert (
        main(
            ["simweb", "build", "--seed", "1", "--out", str(out), "--entities", "40", "--no-index"]
        )
        == 0
    )
    assert "test questions" in capsys.readouterr().out and not (out / "index").exists()
    assert main(["simweb", "index", str(out)]) == 0
    assert (out / "index/text").is_dir() and (out / "index/image/meta.json").is_file()
    assert main(["simweb", "build", "--seed", "1", "--out", str(out), "--entities", "40"]) == 2
    assert main(["simweb", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 1
    assert main(["simweb", "info", str(tmp_path)]) == 2  # not a world: a clear error, no trace
    assert "not a SimWeb world" in capsys.readouterr().err
    # the world's files go through the same commands a user runs on their own data
    w = World.load(out)
    q = next(q for q in w.questions.values() if q.search == "crop")
    e = w.entities[q.entity]
    assert main(["index", "text", str(out / "corpus.jsonl"), "--out", str(tmp_path / "t")]) == 0
    capsys.readouterr()
    assert main(["search", "text", f"{e.name} city", "--index", str(tmp_path / "t"), "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits[0]["title"] == e.name and e.facts["city"] in hits[0]["snippet"]
    assert (
        main(["index", "images", str(out / "image_pages.jsonl"), "--out", str(tmp_path / "i")]) == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "search",
                "images",
                str(out / q.image),
                "--index",
                str(tmp_path / "i"),
                "--json",
                "--crop",
                q.expression,
                "--grounder",
                "simweb",
                "--grounder-option",
                f"world={out}",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["hits"][0]["title"] == e.name


def test_not_a_world_is_a_clear_error(tmp_path):
    with pytest.raises(WorldError, match="not a SimWeb world"):
        World.load(tmp_path)
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        build_world(tmp_path, entities=40, overwrite=True, progress=False)
    assert (tmp_path / "keep.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="unknown size"):
        build_world(tmp_path / "x", size="huge")


def test_rounds_give_more_questions_per_entity(tmp_path):
    build_world(tmp_path / "w", seed=2, entities=40, rounds=2, indexes=False, progress=False)
    w = World.load(tmp_path / "w")
    assert set(Counter(q.entity for q in w.questions.values()).values()) == {2}
    scenes_of = Counter(o.entity for s in w.scenes.values() for o in s.objects)
    assert set(scenes_of.values()) == {2}  # each time in a freshly drawn scene
    with pytest.raises(ValueError, match="rounds"):
        build_world(tmp_path / "x", entities=40, rounds=0)


@pytest.mark.parametrize("module", ["names", "facts", "pictures"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"deepmmsearch.simweb.{module}"))
    assert result.attempted > 0 and result.failed == 0


def test_a_small_bpe_splits_held_out_names_into_pieces_of_training_names(world_dir, world):
    """The speedrun finding: a tiny model copies unseen names piece by piece (vocab ~500-1000)."""
    tk = pytest.importorskip("tokenizers")
    texts = [json.loads(x)["text"] for x in (world_dir / "corpus.jsonl").read_text().splitlines()]
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = tk.pre_tokenizers.ByteLevel.alphabet()
    trainer = tk.trainers.BpeTrainer(vocab_size=600, show_progress=False, initial_alphabet=alphabet)
    tok.train_from_iterator(texts, trainer)
    by_split: dict[str, list[list[str]]] = {}
    for e in world.entities.values():
        by_split.setdefault(e.split, []).append(tok.encode(" " + e.name).tokens)
    seen = {t for toks in by_split["train"] for t in toks}
    assert all(len(toks) >= 2 for toks in by_split["train"])  # no name is one opaque token
    covered = [all(t in seen for t in toks) for toks in by_split["test"]]
    assert sum(covered) >= 0.9 * len(covered), sum(covered) / len(covered)
