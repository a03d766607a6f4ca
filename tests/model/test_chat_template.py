"""The chat template: layout rules, and the Jinja template renders exactly what the Python one does."""

from __future__ import annotations

import pytest

from deepmmsearch.conversation.template import (
    ASSISTANT_HEADER,
    IMAGE_TOKENS,
    TURN_END,
    render_segments,
    render_text,
    to_hf_messages,
)
from deepmmsearch.types import Message

Q = Message("user", "<image>What is this?", images=("a.png",))
A1 = Message("assistant", "<reason>r</reason><text_search>q</text_search>")
T1 = Message("tool", "<information>found</information>\nnow answer")
A2 = Message("assistant", "<reason>r</reason><answer>x</answer>")

CONVERSATIONS = [
    [Q],
    [Q, A1],
    [Q, A1, T1],
    [Q, A1, T1, A2],
    [Message("system", "be brief"), Q, A1, T1, A2],
    [Q, A1, T1, A2, Message("user", "and then?"), A2],  # a second round after the episode
    [Message("user", "no image here")],
]


def test_episode_is_one_assistant_turn():
    text = render_text([Q, A1, T1, A2])
    assert text == (
        f"<|im_start|>user\n{IMAGE_TOKENS}What is this?<|im_end|>\n{ASSISTANT_HEADER}"
        f"{A1.content}{T1.content}{A2.content}{TURN_END}"
    )
    assert text.count("<|im_start|>assistant") == 1


def test_only_model_text_is_trainable():
    segs = render_segments([Q, A1, T1, A2])
    assert [s.text for s in segs if s.trainable] == [A1.content, A2.content]
    assert all("<information>" not in s.text for s in segs if s.trainable)


def test_generation_prompt_only_after_user():
    assert render_text([Q]).endswith(ASSISTANT_HEADER)
    assert not render_text([Q], add_generation_prompt=False).endswith(ASSISTANT_HEADER)
    assert render_text([Q, A1, T1]).endswith(T1.content)  # the model continues the same turn


def test_images_without_placeholder_go_first():
    segs = render_segments([Message("user", "Q?", images=("a.png", "b.png"))])
    assert segs[0].text.startswith("<|im_start|>user\n" + IMAGE_TOKENS * 2 + "Q?")
    assert segs[0].images == ("a.png", "b.png")


@pytest.mark.parametrize("bad", [
    [Message("tool", "x")],
    [Q, Message("tool", "x", images=("a.png",))],
    [Message("user", "<image><image>", images=("a.png",))],
])
def test_bad_conversations_are_errors(bad):
    with pytest.raises(ValueError):
        render_segments(bad)


@pytest.mark.parametrize("conv", CONVERSATIONS)
@pytest.mark.parametrize("gen", [True, False])
def test_jinja_template_matches_python(tiny, conv, gen):
    tokenizer = tiny[1].tokenizer
    hf = to_hf_messages(conv)
    out = tokenizer.apply_chat_template(hf, tokenize=False, add_generation_prompt=gen)
    assert out == render_text(conv, add_generation_prompt=gen)


def test_jinja_parts_content_and_assistant_mask(tiny):
    """HF list content renders the same; the generation markers mark exactly the model text."""
    tok = tiny[1].tokenizer
    parts = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]},
             *to_hf_messages([A1, T1, A2])]
    assert tok.apply_chat_template(parts, tokenize=False) == render_text([Q, A1, T1, A2])
    out = tok.apply_chat_template(parts, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    marked = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(marked) == A1.content + A2.content
