"""Copy-span augmentation (train/sft_augment.py): fresh names and numbers, consistently."""

import re

import pytest

from deepmmsearch.config import load_config
from deepmmsearch.registry import ConfigError
from deepmmsearch.train.sft_augment import AugmentSpec, augment_examples, fit_renamer
from deepmmsearch.train.sft_data import SFTExample
from deepmmsearch.types import Message


def _two_hop(name: str, person: str, city: str, speed: str) -> SFTExample:
    return SFTExample(f"q-{name}", [
        Message("user", "<image>In which city was the designer of the red car born?", ("scene.png",)),
        Message("assistant", "<reason>I need the red car.</reason><img_search>the red car</img_search>"),
        Message("tool", f"<information>{name}: A photo of {name}, a car.</information>"),
        Message("assistant", f"<reason>The image search shows {name}.</reason><text_search>{name} designer"
                             "</text_search>"),
        Message("tool", f"<information>{name}: The designer of {name} is {person}. The top speed of "
                        f"{name} is {speed} km/h.</information>"),
        Message("assistant", f"<reason>{person} is the designer.</reason><text_search>{person} birthplace"
                             "</text_search>"),
        Message("tool", f"<information>{person}: The birthplace of {person} is the city of {city}."
                        "</information>"),
        Message("assistant", f"<reason>The information gives it.</reason><answer>{city}</answer>"),
    ], ["scene.png"])


def _dated(name: str) -> SFTExample:
    return SFTExample(f"d-{name}", [
        Message("user", f"<image>What is the latest price of the car {name}?", ("scene.png",)),
        Message("assistant", f"<reason>The question names {name}.</reason><text_search>{name} latest price"
                             "</text_search>"),
        Message("tool", f"<information>In 2002, the price of {name} was 1665 euros. The latest price of "
                        f"{name} is 5835 euros, since 2019.</information>"),
        Message("assistant", "<reason>The information gives the latest price.</reason><answer>5835 euros"
                             "</answer>"),
    ], ["scene.png"])


SEARCH_FREE = SFTExample("sf", [
    Message("user", "<image>What colour is the car on the left?", ("scene.png",)),
    Message("assistant", "<reason>I can see it is red.</reason><answer>red</answer>"),
], ["scene.png"])

# "Greta" is every example's first name: shared vocabulary, kept; the rest are facts
DATA = [_two_hop(f"Nena{s}", f"Greta So{s}", f"Pibo{s}mar", f"4{i}5") for i, s in enumerate("bdfgk")]
DATA += [_dated("Gisala"), SEARCH_FREE]


def _text(ex: SFTExample) -> str:
    return "\n".join(m.content for m in ex.messages)


def test_copies_rename_every_fact_consistently_and_keep_the_rest():
    out = augment_examples(DATA, AugmentSpec(copies=2, seed=3))
    assert len(out) == 3 * len(DATA) and out[: len(DATA)] == DATA
    orig, copy = DATA[0], out[len(DATA)]
    assert copy.id == f"{orig.id}~r0" and copy.images == orig.images
    assert [m.role for m in copy.messages] == [m.role for m in orig.messages]
    assert [m.images for m in copy.messages] == [m.images for m in orig.messages]
    new = _text(copy)
    for old in ("Nenab", "Sob", "Pibobmar", "405"):
        assert old not in new
    assert "Greta" in new and "The designer of" in new and "<text_search>" in new
    # the fresh entity name is the same string in the information, the query and the reason
    name = re.search(r"<information>(\w+): A photo", new).group(1)
    assert f"<text_search>{name} designer</text_search>" in new and f"shows {name}." in new
    # the fresh city: the answer copies what the last information says, letter classes kept
    city = re.search(r"the city of (\w+)\.", new).group(1)
    assert new.endswith(f"<answer>{city}</answer>") and len(city) == len("Pibobmar") and city[0].isupper()
    assert [c in "aeiou" for c in city.lower()] == [c in "aeiou" for c in "pibobmar"]
    # a person keeps a shared first name, gets a fresh surname, in every message that has it
    person = re.search(r"is (Greta \w+)\. The top", new).group(1)
    assert new.count(person) == 5 and person != "Greta Sob"
    speed = re.search(r"is (\d+) km/h", new).group(1)
    assert len(speed) == 3 and speed[0] != "0"
    assert _text(out[len(DATA) + len(DATA) * 1]) != new  # the second copy draws other strings


def test_years_keep_their_order_and_the_answer_follows_its_number():
    out = augment_examples(DATA, AugmentSpec(copies=5, seed=0))
    for copy in out[len(DATA):]:
        if not copy.id.startswith("d-"):
            continue
        text = _text(copy)
        first, latest = re.search(r"In (\d{4}), .* since (\d{4})", text).groups()
        assert 1800 <= int(first) < int(latest) <= 2030
        price = re.search(r"latest price of \w+ is (\d+) euros", text).group(1)
        assert text.endswith(f"<answer>{price} euros</answer>") and price != "5835"


def test_examples_whose_tools_bring_nothing_are_copied_unchanged():
    out = augment_examples(DATA, AugmentSpec(copies=2))
    copies = [ex for ex in out if ex.id.startswith("sf~")]
    assert len(copies) == 2 and all(ex.messages == SEARCH_FREE.messages for ex in copies)


def test_deterministic_for_a_seed():
    a = augment_examples(DATA, AugmentSpec(copies=1, seed=7))
    b = augment_examples(DATA, AugmentSpec(copies=1, seed=7))
    c = augment_examples(DATA, AugmentSpec(copies=1, seed=8))
    assert a == b and a != c


def test_shared_words_and_letters():
    r = fit_renamer([ex.messages for ex in DATA], max_share=0.01)
    assert {"Greta", "The", "In"} <= r.keep  # frequent, or also written in lower case
    assert not {"Nenab", "Gisala", "Sob"} & r.keep
    assert set(r.vowels) <= set("aeiou") and "x" not in r.consonants  # letters the names use


def test_config():
    cfg = load_config(data={"stage": "sft", "data": "x.jsonl", "model": "m", "augment": {"copies": 2}})
    assert cfg.augment == AugmentSpec(copies=2)
    with pytest.raises(ConfigError, match="copies"):
        load_config(data={"stage": "sft", "data": "x.jsonl", "model": "m", "augment": {"copies": -1}})
    with pytest.raises(ConfigError):
        load_config(data={"stage": "sft", "data": "x.jsonl", "model": "m", "augment": {"copis": 2}})
