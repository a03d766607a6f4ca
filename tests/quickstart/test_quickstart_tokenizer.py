"""The tiny tokenizer's ``prefix_space`` option (the quickstart uses it): a name or a number right
after a tag is split exactly as inside a sentence, so a tiny model can copy it token for token
out of ``<information>``; the protocol parser strips the space decoding leaves."""

from __future__ import annotations

import pytest

from deepmmsearch.protocol import parse_action

pytest.importorskip("tokenizers")

TEXTS = ["<information>Kelumo: The wingspan of Kelumo is 1807 cm. Rapito is built in Vudamar.</information>",
         "<reason>The image search shows Kelumo.</reason><text_search>Kelumo wingspan</text_search>",
         "<answer>1807 cm</answer> Tagime nests near the city of Vudamar in 2019."] * 20


def _pieces(tok, text: str) -> list[str]:
    return [tok.decode([i]) for i in tok(text)["input_ids"]]


def test_words_after_a_tag_split_as_inside_a_sentence():
    from deepmmsearch.models.tiny import train_tokenizer

    tok = train_tokenizer(TEXTS, 300, prefix_space=True)
    inside = _pieces(tok, "The wingspan of Kelumo is 1807 cm.")
    after_tag = _pieces(tok, "<text_search>Kelumo wingspan</text_search>")
    answer = _pieces(tok, "<answer>1807 cm</answer>")
    name = inside[inside.index(" of") + 1: inside.index(" is")]
    number = inside[inside.index(" is") + 1: inside.index(" cm")]
    assert after_tag[1: 1 + len(name)] == name
    assert answer[1: 1 + len(number)] == number
    assert number == [" ", "1", "8", "0", "7"]  # one digit a token, the space apart
    text = tok.decode(tok("<reason>ok</reason><answer>1807 cm</answer>")["input_ids"])
    assert parse_action(text).argument == "1807 cm"


def test_default_tokenizer_is_unchanged():
    from deepmmsearch.models.tiny import train_tokenizer

    tok = train_tokenizer(TEXTS, 300)
    text = "<answer>1807 cm</answer>"
    assert tok.decode(tok(text)["input_ids"]) == text


def test_capital_pieces_give_a_name_a_syllable_first_piece():
    import itertools
    import random

    from deepmmsearch.models.tiny import train_tokenizer
    from deepmmsearch.simweb.names import NameGenerator

    gen = NameGenerator(random.Random(0))
    names = [gen.entity() for _ in range(400)]
    texts = [f"<information>{a}: {a} was built by {b} in 1807.</information>" for a, b in itertools.pairwise(names)]
    plain = train_tokenizer(texts, 600, prefix_space=True)
    split = train_tokenizer(texts, 600, prefix_space=True, capital_pieces=True)
    unseen = gen.entity()  # a name no training text holds
    first = _pieces(plain, f"<answer>{unseen}</answer>")[1]
    assert first == " " + unseen[0]  # many varied names: a lone capital (one of 14 onsets)
    pieces = _pieces(split, f"<answer>{unseen}</answer>")
    assert pieces[1] == " " + unseen[:2]  # capital and vowel: one of 70 syllables
    assert "".join(pieces[1:-1]) == " " + unseen
    assert split.decode(split(f"<answer>{unseen}</answer>")["input_ids"]) == f"<answer> {unseen}</answer>"
    assert _pieces(split, " built in 1807")[-4:] == ["1", "8", "0", "7"]  # digits as before
