"""Protocol: the tag grammar, escaping and the format score.

Run: .venv/bin/pytest tests/runtime/test_rt_protocol.py -q
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepmmsearch.protocol import (
    GIVE_UP,
    STOP_STRINGS,
    escape_information,
    extract_information,
    format_score,
    information_spans,
    is_give_up,
    parse_action,
    parse_box,
    render_action,
    render_information,
    unescape_information,
)
from deepmmsearch.types import Action, Box, Message, Trajectory, Turn

R = "<reason>why</reason>"

# (text, kind, argument, whole_image, box)
VALID = [
    (R + "<answer>Paris</answer>", "answer", "Paris", False, None),
    ("  \n" + R + "\n<answer> Paris </answer>\n ", "answer", "Paris", False, None),
    (R + "<text_search>eiffel tower height</text_search>", "text_search", "eiffel tower height", False, None),
    (R + "<img_search>the white bird</img_search>", "image_search", "the white bird", False, None),
    (R + "<img_search><img></img_search>", "image_search", "<img>", True, None),
    (R + "<img_search> <img> </img_search>", "image_search", "<img>", True, None),
    (R + "<img_search>img</img_search>", "image_search", "<img>", True, None),
    (R + "<img_search>[10, 20, 110, 220]</img_search>", "image_search", "[10, 20, 110, 220]", False,
     Box(10, 20, 110, 220)),
    (R + "<img_search>[1.5,2,3,4.25]</img_search>", "image_search", "[1.5,2,3,4.25]", False,
     Box(1.5, 2, 3, 4.25)),
    (R + '<img_search>{"bbox_2d": [5, 6, 50, 60], "label": "bird"}</img_search>', "image_search",
     '{"bbox_2d": [5, 6, 50, 60], "label": "bird"}', False, Box(5, 6, 50, 60)),
    (R + '<img_search>[{"bbox_2d": [1, 2, 3, 4]}]</img_search>', "image_search",
     '[{"bbox_2d": [1, 2, 3, 4]}]', False, Box(1, 2, 3, 4)),
    (R + f"<answer>{GIVE_UP}</answer>", "answer", GIVE_UP, False, None),
    ("<reason>multi\nline <b>html</b> is fine</reason><answer>x</answer>", "answer", "x", False, None),
]


@pytest.mark.parametrize("text,kind,argument,whole,box", VALID)
def test_valid_turns(text, kind, argument, whole, box):
    a = parse_action(text)
    assert a.kind == kind, a.error
    assert a.argument == argument
    assert a.whole_image is whole
    assert a.box == box
    assert a.error is None
    assert a.reason


INVALID = [
    (R + "<text_search>a</text_search><answer>b</answer>", "two actions in one turn"),
    (R + "<img_search>x</img_search><text_search>y</text_search>", "two actions in one turn"),
    (R + "<text_search>a <answer>b</answer></text_search>", "nested <answer> inside <text_search>"),
    ("<reason>r <answer>b</answer></reason>", "nested <answer> inside <reason>"),
    (R + "<text_search>never closed", "unclosed <text_search> tag"),
    (R + "<answer>x</text_search>", "<answer> closed by </text_search>"),
    ("</answer>", "closing </answer> without an opening tag"),
    ("<answer>Paris</answer>", "no <reason> before the action"),
    ("<text_search>q</text_search>", "no <reason> before the action"),
    (R + "<text_search>   </text_search>", "empty text query"),
    (R + "<answer></answer>", "empty answer"),
    (R + "<img_search> </img_search>", "empty image-search expression"),
    (R + "<answer>Paris</answer> I hope this helps", "trailing text after the action"),
    ("Sure! " + R + "<answer>Paris</answer>", "text outside the tags (before <reason>)"),
    ("<reason>r</reason> so <answer>Paris</answer>", "text outside the tags (between <answer>)"),
    (R + "<information>fake results</information><answer>x</answer>",
     "the model wrote an <information> block; only the environment may"),
    (R + "<img_search><img></img></img_search>",
     "write <img_search><img></img_search> for the whole image"),
    (R + "<img_search><b>bold</b></img_search>", "unexpected markup inside <img_search>"),
    ("no tags at all", "no action tag"),
    ("", "no action tag"),
    (R, "no action after <reason>"),
    ("<reason> </reason><answer>x</answer>", "empty <reason>"),
    (R + R + "<answer>x</answer>", "more than one <reason>"),
    ("<answer>x</answer>" + R, "<reason> after the action"),
]


@pytest.mark.parametrize("text,error", INVALID)
def test_invalid_turns(text, error):
    a = parse_action(text)
    assert a.kind == "invalid"
    assert a.error == error
    assert a.argument == ""


def test_reason_kept_on_invalid_turns():
    a = parse_action("<reason>thinking</reason><answer>a</answer><answer>b</answer>")
    assert a.kind == "invalid" and a.reason == "thinking"


def test_require_reason_false_allows_bare_action():
    a = parse_action("<text_search>q</text_search>", require_reason=False)
    assert a.kind == "text_search" and a.argument == "q" and a.reason is None


def test_non_string_input_never_raises():
    for junk in (None, 123, b"<answer>x</answer>", ["<answer>"], object()):
        assert parse_action(junk).kind == "invalid"  # type: ignore[arg-type]


@pytest.mark.parametrize("text,expected", [
    ("[1, 2, 3, 4]", Box(1, 2, 3, 4)),
    ("```json\n{\"bbox_2d\": [1, 2, 3, 4]}\n```", Box(1, 2, 3, 4)),
    ('{"bbox": [0, 0, 9, 9]}', Box(0, 0, 9, 9)),
    ("[1, 2, 3]", None),
    ('{"bbox_2d": [1, 2, "x", 4]}', None),
    ('{"bbox_2d": [true, 2, 3, 4]}', None),
    ("[[[[[[", None),
    ("the man on the left", None),
])
def test_parse_box(text, expected):
    assert parse_box(text) == expected


def test_stop_strings_close_every_action():
    assert set(STOP_STRINGS) == {"</text_search>", "</img_search>", "</answer>"}


# --- fuzzing ---------------------------------------------------------------------------------

FRAGMENTS = [
    "<reason>", "</reason>", "<answer>", "</answer>", "<text_search>", "</text_search>",
    "<img_search>", "</img_search>", "<information>", "</information>", "<img>", "</img>", "img",
    "<image>", "[1, 2, 3, 4]", '{"bbox_2d": [1,2,3,4]}', "<", ">", "</", "&lt;", " ", "\n", "x",
    "the bird", "Paris", "{", "[", "```json",
]
KINDS = {"answer", "text_search", "image_search", "invalid"}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(a: Action) -> None:
    assert isinstance(a, Action)
    assert a.kind in KINDS
    if a.kind == "invalid":
        assert a.error
    else:
        assert a.error is None and a.argument


@FUZZ
@given(st.text())
def test_fuzz_random_strings(text):
    _check(parse_action(text))
    _check(parse_action(text, require_reason=False))


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=5)), max_size=14))
def test_fuzz_tag_fragment_sequences(parts):
    text = "".join(parts)
    a = parse_action(text)
    _check(a)
    if a.kind != "invalid":  # a valid parse renders back to something that parses the same
        again = parse_action(render_action(a))
        assert (again.kind, again.argument, again.whole_image, again.box) == (
            a.kind, a.argument, a.whole_image, a.box)


_plain = st.text(alphabet=st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)),
                 min_size=1).filter(lambda s: s.strip() == s and s != "img")


@FUZZ
@given(st.sampled_from(["answer", "text_search", "image_search"]), _plain, _plain, st.booleans())
def test_render_parse_round_trip(kind, argument, reason, whole):
    whole = whole and kind == "image_search"
    act = Action(kind=kind, argument="<img>" if whole else argument, reason=reason, whole_image=whole)
    back = parse_action(render_action(act))
    assert back.kind == kind, back.error
    assert back.reason == reason
    assert back.whole_image is whole
    if not whole:
        assert back.argument == argument


def test_render_invalid_raises():
    with pytest.raises(ValueError):
        render_action(Action(kind="invalid", error="x"))


# --- escaping and injection ------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_escape_round_trip(text):
    esc = escape_information(text)
    assert "<" not in esc and ">" not in esc
    assert unescape_information(esc) == text
    block = render_information(text)
    assert information_spans(block) == [(0, len(block))]
    assert extract_information(block) == [text]
    # a tool text can never turn an assistant turn + injection into a new action
    assert parse_action(R + "<answer>a</answer>" + block).kind == "invalid"


@pytest.mark.parametrize("text", ["&amp;", "&lt;/information&gt;", "a & b < c > d", "&&lt;;"])
def test_escape_round_trip_tricky(text):
    assert unescape_information(escape_information(text)) == text


def test_information_spans_ignore_prompt_mentions_of_the_tag():
    # The follow-up prompts mention "<information>" in prose; only real blocks are spans.
    convo = (
        render_information("first") + "\nThe <information> above holds results. Think in <reason> "
        "</reason>." + R + "<text_search>q</text_search>" + render_information("second & <b>")
    )
    assert extract_information(convo) == ["first", "second & <b>"]
    assert len(information_spans(convo)) == 2


@pytest.mark.parametrize("text,expected", [
    (GIVE_UP, True), (GIVE_UP + ".", True), ("Unable to answer due to lack of information", True),
    ("unable to answer due to lack of relevant information!", True), ("Paris", False), (None, False),
    ("", False),
])
def test_is_give_up(text, expected):
    assert is_give_up(text) is expected


# --- format score ----------------------------------------------------------------------------

T = R + "<text_search>q</text_search>"
I = R + "<img_search>the bird</img_search>"
W = R + "<img_search><img></img_search>"
A = R + "<answer>x</answer>"


@pytest.mark.parametrize("turns,score", [
    ([A], 1.0),
    ([T, A], 1.0),
    ([I, T, T, A], 1.0),
    ([W, A], 1.0),
    ([T] * 10 + [A], 1.0),
    ([T] * 11 + [A], 0.0),  # more than 10 tool calls
    ([I, W, A], 0.0),  # two image searches
    ([T], 0.0),  # no answer
    ([], 0.0),
    ([A, A], 0.0),  # answer before the end
    ([T, "<text_search>q</text_search>", A], 0.0),  # a turn without reason
    ([T, A + " extra"], 0.0),
    ([T, R + "<answer>x</answer><answer>y</answer>"], 0.0),
    ([R + "<text_search>q", A], 0.0),
])
def test_format_score_table(turns, score):
    assert format_score(turns) == score


def test_format_score_on_trajectory_and_limits():
    turns = [Turn(i, t, parse_action(t)) for i, t in enumerate([I, W, A])]
    traj = Trajectory(id="t", question="q", image=None, turns=turns,
                      prompt=[Message("user", "q")])
    assert format_score(traj) == 0.0
    assert format_score(traj, max_image_searches=2) == 1.0
    assert format_score([T, T, A], max_tool_calls=1) == 0.0


_WELL_FORMED = st.builds(
    lambda ws, reason, tag, inner: f"{ws}<reason>{reason}</reason>{ws}<{tag}>{inner}</{tag}>{ws}",
    st.sampled_from(["", " ", "\n", "\t \n"]),
    st.text(max_size=12),
    st.sampled_from(["text_search", "img_search", "answer", "reason", "information"]),
    st.one_of(st.sampled_from(["img", "<img>", "[1, 2, 3, 4]", '{"bbox_2d": [1,2,3,4]}', " ", ">"]),
              st.text(max_size=12)),
)


@FUZZ
@given(st.one_of(_WELL_FORMED, st.lists(st.sampled_from(FRAGMENTS), max_size=10).map("".join)))
def test_fast_path_agrees_with_the_general_parser(text):
    from deepmmsearch.protocol import _parse_general

    assert parse_action(text) == _parse_general(text, True)
