"""The one chat template used for SFT, RL rollouts and inference (pure; no tokenizer needed).

A conversation runs user → assistant → tool → assistant → … . Injected tool text (the
``<information>`` block and the follow-up prompt) is rendered **inline inside the assistant turn**,
with no role header, so a whole episode is one assistant turn::

    <|im_start|>user
    <|vision_start|><|image_pad|><|vision_end|>What is the wingspan of this bird?<|im_end|>
    <|im_start|>assistant
    <reason>…</reason><img_search>the white bird</img_search><information>…</information>…
    <reason>…</reason><answer>131 to 170 cm</answer><|im_end|>

Rules: the assistant header is printed only when the previous message is not a tool message;
``<|im_end|>`` closes an assistant message only when the next message is not a tool message.

:func:`render_segments` returns the conversation as :class:`Segment` pieces (model text is
``trainable``; everything else is not). ``conversation/encoding.py`` turns them into token ids and the
loss/env mask; ``CHAT_TEMPLATE`` is the same template in Jinja for ``apply_chat_template`` (vLLM,
TRL's ``assistant_only_loss``), and a test checks that both render identical text.

The closing ``<|im_end|>`` is *not* trainable: every policy stops at the action's closing tag
(``protocol.STOP_STRINGS``), so a rollout never samples it, and SFT must train exactly the tokens
a rollout produces (see docs/DECISIONS.md, Training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from deepmmsearch.protocol import IMAGE_PLACEHOLDER
from deepmmsearch.types import Message

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
ENDOFTEXT = "<|endoftext|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END, VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD)
IMAGE_TOKENS = VISION_START + IMAGE_PAD + VISION_END  # one image; the pad is expanded per image
ASSISTANT_HEADER = f"{IM_START}assistant\n"
TURN_END = f"{IM_END}\n"

SegmentRole = Literal["system", "user", "template", "assistant", "tool"]


@dataclass(frozen=True)
class Segment:
    """A piece of the rendered conversation. ``trainable`` marks model-written text."""

    text: str
    role: SegmentRole
    trainable: bool = False
    images: tuple[str, ...] = ()  # images whose placeholders appear in ``text``, in order


def expand_image_placeholders(content: str, n_images: int) -> str:
    """Replace each ``<image>`` with the vision tokens; images without a placeholder go first."""
    found = content.count(IMAGE_PLACEHOLDER)
    if found > n_images:
        raise ValueError(f"message has {found} {IMAGE_PLACEHOLDER} placeholders but {n_images} images")
    missing = n_images - found
    return IMAGE_TOKENS * missing + content.replace(IMAGE_PLACEHOLDER, IMAGE_TOKENS)


def render_segments(messages: Sequence[Message], *, add_generation_prompt: bool = True) -> list[Segment]:
    """Render messages as segments (see the module docstring for the layout).

    With ``add_generation_prompt`` the assistant header is appended when the conversation ends
    with a user or system message; after a tool message the model continues the same turn.
    """
    segs: list[Segment] = []
    for i, m in enumerate(messages):
        prev = messages[i - 1].role if i else None
        nxt = messages[i + 1].role if i + 1 < len(messages) else None
        if m.role in ("system", "user"):
            if prev == "tool":
                segs.append(Segment(TURN_END, "template"))
            body = expand_image_placeholders(m.content, len(m.images)) if m.images else m.content
            segs.append(Segment(f"{IM_START}{m.role}\n{body}{IM_END}\n", m.role, False, tuple(m.images)))
        elif m.role == "assistant":
            if m.images:
                raise ValueError("assistant messages cannot carry images")
            if prev != "tool":
                segs.append(Segment(ASSISTANT_HEADER, "template"))
            segs.append(Segment(m.content, "assistant", True))
            if nxt != "tool":
                segs.append(Segment(TURN_END, "template"))
        elif m.role == "tool":
            if prev not in ("assistant", "tool"):
                raise ValueError(f"message {i}: a tool message must follow an assistant message")
            if m.images:
                raise ValueError("tool messages cannot carry images (DeepMMSearch-R1 returns text)")
            segs.append(Segment(m.content, "tool"))
        else:
            raise ValueError(f"message {i}: unknown role {m.role!r}")
    if add_generation_prompt and messages and messages[-1].role in ("system", "user"):
        segs.append(Segment(ASSISTANT_HEADER, "template"))
    return segs


def render_text(messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
    """The conversation as one string (the image pad not yet expanded)."""
    return "".join(s.text for s in render_segments(messages, add_generation_prompt=add_generation_prompt))


# The same template in Jinja, for tokenizer/processor ``apply_chat_template`` (vLLM, TRL). String
# content may hold ``<image>`` placeholders; list content follows the HF parts format. Assistant
# text is wrapped in generation markers so ``return_assistant_tokens_mask`` marks exactly it.
# JINJA_MESSAGE_BODY sets ``body`` for message ``m`` (other templates, e.g. veRL's, reuse it).
JINJA_MESSAGE_BODY = (
    "{%- set vis = '<|vision_start|><|image_pad|><|vision_end|>' -%}"
    "{%- if m.content is string -%}"
    "{%- set body = m.content | replace('<image>', vis) -%}"
    "{%- else -%}"
    "{%- set ns = namespace(s='') -%}"
    "{%- for part in m.content -%}"
    "{%- if part.type in ['image', 'image_url'] or 'image' in part -%}{%- set ns.s = ns.s + vis -%}"
    "{%- elif part.type == 'text' -%}{%- set ns.s = ns.s + part.text -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- set body = ns.s -%}"
    "{%- endif -%}"
)
CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- set prev = messages[loop.index0 - 1].role if not loop.first else none -%}"
    "{%- set nxt = messages[loop.index0 + 1].role if not loop.last else none -%}"
    + JINJA_MESSAGE_BODY +
    "{%- if m.role in ['system', 'user'] -%}"
    "{%- if prev == 'tool' -%}{{ '<|im_end|>\\n' }}{%- endif -%}"
    "{{ '<|im_start|>' + m.role + '\\n' + body + '<|im_end|>\\n' }}"
    "{%- elif m.role == 'assistant' -%}"
    "{%- if prev != 'tool' -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
    "{% generation %}{{ body }}{% endgeneration %}"
    "{%- if nxt != 'tool' -%}{{ '<|im_end|>\\n' }}{%- endif -%}"
    "{%- elif m.role == 'tool' -%}"
    "{{ body }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt and messages and messages[-1].role in ['system', 'user'] -%}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{%- endif -%}"
)


def to_hf_messages(messages: Sequence[Message]) -> list[dict]:
    """Neutral messages → HF chat dicts (``content`` as a string with ``<image>`` placeholders)."""
    return [{"role": m.role, "content": m.content} for m in messages]
