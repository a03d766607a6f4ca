"""The tag grammar of DeepMMSearch-R1 — the one place that knows the control strings.

A model turn is ``<reason>…</reason>`` followed by exactly one action tag and nothing else::

    <reason>The bird must be identified first.</reason><img_search>the white bird</img_search>
    <reason>…</reason><img_search><img></img_search>        # whole-image search (E.1 form)
    <reason>…</reason><text_search>heron wingspan</text_search>
    <reason>…</reason><answer>About 1.8 m</answer>

The environment answers a search with ``<information>…</information>``. Tool text is escaped so
that a web page cannot close that block or smuggle an action into the conversation.

>>> parse_action("<reason>known</reason><answer>Paris</answer>").kind
'answer'
>>> parse_action("<answer>Paris</answer>").error
'no <reason> before the action'
>>> parse_action("<reason>r</reason><img_search>img</img_search>").whole_image
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from deepmmsearch.types import Action, Box, Trajectory

REASON = "reason"
TEXT_SEARCH = "text_search"
IMG_SEARCH = "img_search"
ANSWER = "answer"
INFORMATION = "information"
ACTION_TAGS = (TEXT_SEARCH, IMG_SEARCH, ANSWER)
ALL_TAGS = (REASON, TEXT_SEARCH, IMG_SEARCH, ANSWER, INFORMATION)

IMAGE_PLACEHOLDER = "<image>"  # where the image goes in a prompt
WHOLE_IMAGE = "<img>"  # inside <img_search>: search the whole image (E.1 form)
WHOLE_IMAGE_BARE = "img"  # the form of the paper's section 2 and Figure 1; accepted
# E.1 form, without a final period. Variants are recognised by is_give_up().
GIVE_UP = "Unable to answer due to lack of relevant information"

STOP_STRINGS = tuple(f"</{t}>" for t in ACTION_TAGS)  # generation stops after an action


def open_tag(name: str) -> str:
    return f"<{name}>"


def close_tag(name: str) -> str:
    return f"</{name}>"


def wrap(name: str, text: str) -> str:
    return f"<{name}>{text}</{name}>"


# ---------------------------------------------------------------------------------------------
# parsing

_TAG_RE = re.compile(r"<(/?)(" + "|".join(ALL_TAGS) + r")>")
_BOX_RE = re.compile(
    r"^\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,"
    r"\s*(-?\d+(?:\.\d+)?)\s*\]$"
)


def _invalid(error: str, reason: str | None = None) -> Action:
    return Action(kind="invalid", error=error, reason=reason)


def parse_box(text: str) -> Box | None:
    """An explicit box: ``[x1, y1, x2, y2]`` or Qwen2.5-VL's ``{"bbox_2d": [...]}`` JSON.

    Tolerates code fences and a one-element list around the JSON object. Returns None when the
    text is not a box. Degenerate boxes are returned as they are; cropping rejects them.
    """
    s = text.strip()
    if s.startswith("```"):
        s = s.strip("`").strip()
        if s.lower().startswith("json"):
            s = s[4:].strip()
    m = _BOX_RE.match(s)
    if m:
        return Box(*(float(g) for g in m.groups()))
    if not s.startswith(("{", "[")):
        return None
    try:
        obj = json.loads(s)
    except (ValueError, RecursionError):
        return None
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if isinstance(obj, dict):
        coords = obj.get("bbox_2d") or obj.get("bbox")
        if (
            isinstance(coords, list)
            and len(coords) == 4
            and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in coords)
        ):
            return Box(*(float(c) for c in coords))
    return None


def parse_action(text: str, *, require_reason: bool = True) -> Action:
    """Parse one model turn. Never raises: malformed input gives ``kind == "invalid"``.

    A valid turn is optional whitespace, ``<reason>…</reason>`` (unless ``require_reason`` is
    False, as in the RAG workflow's query turn), exactly one action tag, optional whitespace.
    """
    try:
        return _parse_action(text if isinstance(text, str) else str(text), require_reason)
    except Exception as exc:  # noqa: BLE001 - a parser must never crash a batch
        return _invalid(f"unparseable turn ({type(exc).__name__})")


# The common well-formed turn, matched in one go (no markup at all inside the tags); anything
# else takes the general path. Both give the same result (a property test checks it).
_FAST_RE = re.compile(
    r"\s*<reason>([^<>]*)</reason>\s*<(text_search|img_search|answer)>([^<>]*)</\2>\s*\Z"
)


def _parse_fast(text: str) -> Action | None:
    m = _FAST_RE.match(text)
    if m is None:
        return None
    reason, name, inner = m.group(1).strip(), m.group(2), m.group(3).strip()
    if not reason or not inner:
        return None  # the general path words the error
    if name == ANSWER:
        return Action(kind="answer", argument=inner, reason=reason)
    if name == TEXT_SEARCH:
        return Action(kind="text_search", argument=inner, reason=reason)
    if inner == WHOLE_IMAGE_BARE:
        return Action(kind="image_search", argument=WHOLE_IMAGE, reason=reason, whole_image=True)
    return Action(kind="image_search", argument=inner, reason=reason, box=parse_box(inner))


def _parse_action(text: str, require_reason: bool) -> Action:
    return _parse_fast(text) or _parse_general(text, require_reason)


def _parse_general(text: str, require_reason: bool) -> Action:
    # Tokenise into (tag, is_close, start, end); the whole-image marker <img> is not a tag here.
    tokens = [(m.group(2), m.group(1) == "/", m.start(), m.end()) for m in _TAG_RE.finditer(text)]
    if not tokens:
        return _invalid("no action tag")
    blocks: list[tuple[str, str, int, int]] = []  # (tag, inner text, start, end)
    pos = 0
    i = 0
    while i < len(tokens):
        name, is_close, start, end = tokens[i]
        if is_close:
            return _invalid(f"closing </{name}> without an opening tag")
        if text[pos:start].strip():
            where = "before" if not blocks else "between"
            return _invalid(f"text outside the tags ({where} <{name}>)")
        if i + 1 >= len(tokens):
            return _invalid(f"unclosed <{name}> tag")
        nname, nclose, nstart, nend = tokens[i + 1]
        if not nclose:
            return _invalid(f"nested <{nname}> inside <{name}>")
        if nname != name:
            return _invalid(f"<{name}> closed by </{nname}>")
        blocks.append((name, text[end:nstart], start, nend))
        pos = nend
        i += 2
    trailing = text[pos:]
    names = [b[0] for b in blocks]
    if INFORMATION in names:
        return _invalid("the model wrote an <information> block; only the environment may")
    reasons = [b for b in blocks if b[0] == REASON]
    actions = [b for b in blocks if b[0] in ACTION_TAGS]
    reason_text = reasons[0][1].strip() if reasons else None
    if not actions:
        return _invalid("no action after <reason>", reason_text)
    if len(actions) > 1:
        return _invalid("two actions in one turn", reason_text)
    if len(reasons) > 1:
        return _invalid("more than one <reason>", reason_text)
    if trailing.strip():
        return _invalid("trailing text after the action", reason_text)
    if names[-1] == REASON:
        return _invalid("<reason> after the action", reason_text)
    if require_reason and not reasons:
        return _invalid("no <reason> before the action")
    if reasons and not reason_text:
        return _invalid("empty <reason>")
    name, inner = actions[0][0], actions[0][1].strip()
    if name == ANSWER:
        if not inner:
            return _invalid("empty answer", reason_text)
        return Action(kind="answer", argument=inner, reason=reason_text)
    if name == TEXT_SEARCH:
        if not inner:
            return _invalid("empty text query", reason_text)
        return Action(kind="text_search", argument=inner, reason=reason_text)
    # image search
    if inner in (WHOLE_IMAGE, WHOLE_IMAGE_BARE):
        return Action(kind="image_search", argument=WHOLE_IMAGE, reason=reason_text, whole_image=True)
    if inner.replace(" ", "") == "<img></img>":
        return _invalid("write <img_search><img></img_search> for the whole image", reason_text)
    if not inner:
        return _invalid("empty image-search expression", reason_text)
    if "<" in inner or ">" in inner:
        return _invalid("unexpected markup inside <img_search>", reason_text)
    box = parse_box(inner)
    if box is not None:
        return Action(kind="image_search", argument=inner, reason=reason_text, box=box)
    return Action(kind="image_search", argument=inner, reason=reason_text)


def render_action(action: Action) -> str:
    """The canonical text of an action (inverse of :func:`parse_action` for valid actions)."""
    head = wrap(REASON, action.reason) if action.reason is not None else ""
    if action.kind == "answer":
        return head + wrap(ANSWER, action.argument)
    if action.kind == "text_search":
        return head + wrap(TEXT_SEARCH, action.argument)
    if action.kind == "image_search":
        return head + wrap(IMG_SEARCH, WHOLE_IMAGE if action.whole_image else action.argument)
    raise ValueError(f"cannot render an {action.kind} action")


# ---------------------------------------------------------------------------------------------
# <information> blocks

_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))


def escape_information(text: str) -> str:
    """Escape tool text so it cannot open or close a tag. Round-trips with the inverse."""
    for raw, esc in _ESCAPES:
        text = text.replace(raw, esc)
    return text


def unescape_information(text: str) -> str:
    for raw, esc in reversed(_ESCAPES):
        text = text.replace(esc, raw)
    return text


def render_information(text: str) -> str:
    """``<information>`` + escaped tool text + ``</information>``."""
    return wrap(INFORMATION, escape_information(text))


# Escaped tool text never contains "<", so a block's body has none: prose that merely mentions
# the tag (the follow-up prompts say "the <information> above") is not mistaken for a block.
_INFO_RE = re.compile(r"<information>([^<]*)</information>")


def information_spans(text: str) -> list[tuple[int, int]]:
    """Character spans (start, end) of every ``<information>…</information>`` block, tags included.

    Only blocks written by :func:`render_information` (escaped bodies) are found.
    """
    return [(m.start(), m.end()) for m in _INFO_RE.finditer(text)]


def extract_information(text: str) -> list[str]:
    return [unescape_information(m.group(1)) for m in _INFO_RE.finditer(text)]


# ---------------------------------------------------------------------------------------------
# answers and format


def is_give_up(answer: str | None) -> bool:
    """True for the give-up answer in any of the paper's three wordings."""
    if not answer:
        return False
    norm = re.sub(r"[^a-z ]", "", answer.lower()).strip()
    return norm in {
        "unable to answer due to lack of relevant information",
        "unable to answer due to lack of information",
    }


def format_score(
    trajectory: Trajectory | Iterable[str],
    *,
    max_image_searches: int = 1,
    max_tool_calls: int = 10,
) -> float:
    """1.0 exactly when every model turn follows the schema, else 0.0.

    Schema: each turn is one ``<reason>`` and one action, nothing outside the tags; the episode
    ends with ``<answer>``; at most ``max_image_searches`` image searches and ``max_tool_calls``
    tool calls. Accepts a Trajectory or the list of model turn texts.
    """
    texts = (
        [t.model_text for t in trajectory.turns]
        if isinstance(trajectory, Trajectory)
        else list(trajectory)
    )
    if not texts:
        return 0.0
    actions = [parse_action(t) for t in texts]
    if any(a.kind == "invalid" for a in actions):
        return 0.0
    if actions[-1].kind != "answer" or any(a.kind == "answer" for a in actions[:-1]):
        return 0.0
    n_img = sum(a.kind == "image_search" for a in actions)
    n_tools = sum(a.kind in ("text_search", "image_search") for a in actions)
    return float(n_img <= max_image_searches and n_tools <= max_tool_calls)
