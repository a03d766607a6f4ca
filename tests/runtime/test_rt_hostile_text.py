"""Reliability, writers and text: whatever text JSON can carry (lone UTF-16 surrogates, NULs,
control characters, any plane) survives every writer, cache and printed answer; secrets never
survive redaction; no embedded IPv4 form slips past the SSRF filter; no ``javascript:`` URL
becomes a source. Property-based (hypothesis), each example in memory or a temporary folder."""

from __future__ import annotations

import ipaddress
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepmmsearch import jsontext
from deepmmsearch.agent.state import is_source_url
from deepmmsearch.data.journal import Journal
from deepmmsearch.eval.records import EvalRecord
from deepmmsearch.eval.store import ResultsFile, read_results
from deepmmsearch.serve.security import address_refusal
from deepmmsearch.tools.cache import ToolCache, make_key
from deepmmsearch.tools.http import _error_detail, redact, register_secret
from deepmmsearch.tools.text.web import clean_text
from deepmmsearch.types import Action, SearchHit, ToolCall, Trajectory, Turn

SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
# any text a JSON document can carry: any code point, lone surrogates included (hypothesis
# leaves them out of st.text by default), as json.loads would hand it over
HOSTILE_TEXT = st.text(st.one_of(st.characters(), SURROGATES), max_size=40).map(
    lambda t: json.loads(json.dumps(t)))
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | HOSTILE_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(HOSTILE_TEXT, inner, max_size=4),
    max_leaves=12)
FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _trajectory(text: str) -> Trajectory:
    hit = SearchHit(title=text, url=f"https://example.org/{text}", snippet=text)
    call = ToolCall(kind="text_search", backend="web", query=text, hits=[hit], summary=text)
    turn = Turn(index=0, model_text=f"<search>{text}</search>",
                action=Action(kind="text_search", argument=text),
                observation=f"<information>{text}</information>", tool_call=call)
    return Trajectory(id="t1", question=f"what is {text}?", image=None, turns=[turn],
                      answer=text, sources=[hit.url], stop_reason="answer")


def test_a_lone_surrogate_is_written_as_an_escape() -> None:
    text = jsontext.dumps({"t": "a\ud800b", "ok": "é"})
    assert text == '{"t": "a\\ud800b", "ok": "é"}'  # readable where it can be, exact everywhere
    assert json.loads(text)["t"] == "a\ud800b"
    assert jsontext.scrub("a\udfffb") == "a\ufffdb"


@FAST
@given(JSONISH)
def test_dumps_round_trips_and_is_always_utf8(value) -> None:
    text = jsontext.dumps(value)
    text.encode("utf-8")  # never raises
    # exactly what the all-ASCII form reads back as (a high+low pair of lone surrogates is one
    # character in any JSON reader: there is no other way to write it)
    expected = json.loads(json.dumps(value))
    assert json.loads(text) == expected
    assert json.loads(jsontext.dumps(value, indent=2, sort_keys=True)) == expected


@FAST
@given(HOSTILE_TEXT)
def test_results_file_keeps_any_text(text) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.jsonl"
        rec = EvalRecord(sample_id="s1", dataset="d", workflow="w", trajectory=_trajectory(text))
        with ResultsFile.open(path) as f:
            f.append(rec)
        back = read_results(path)
        assert [r.trajectory.answer for r in back] == [text]
        assert back[0].trajectory.turns[0].tool_call.hits[0].title == text
        with ResultsFile.open(path) as f:  # a resume reads it back and redoes nothing
            assert f.done == {"s1"}


@FAST
@given(HOSTILE_TEXT, JSONISH)
def test_journal_keeps_any_text(key, value) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "j.jsonl"
        with Journal(path) as j:
            assert j.append(key, {"trajectory": value})
        with Journal(path) as j:
            assert j.repaired == 0 and key in j
            assert j.records[key]["trajectory"] == value


@FAST
@given(HOSTILE_TEXT, JSONISH)
def test_tool_cache_keeps_any_text(query, value) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cache = ToolCache(Path(tmp) / "c.sqlite")
        key = make_key("text", "web", query)
        cache.put(key, value, role="text", backend="web", input=query)
        assert cache.lookup(key) == (True, value)


@FAST
@given(HOSTILE_TEXT)
def test_trajectory_lines_keep_any_text(text) -> None:
    traj = _trajectory(text)
    line = traj.to_json()
    line.encode("utf-8")
    assert Trajectory.from_dict(json.loads(line)).to_dict() == traj.to_dict()


@FAST
@given(HOSTILE_TEXT)
def test_web_text_reaching_the_model_has_no_surrogate(text) -> None:
    cleaned = clean_text(text)
    cleaned.encode("utf-8")  # tokenizers and prompts get valid text


def test_ask_json_prints_a_surrogate_hit(tmp_path, capsys) -> None:
    from deepmmsearch.cli import main

    hits = tmp_path / "hits.jsonl"
    hits.write_text('{"query": "*", "hits": [{"title": "Great egret \\ud800", '
                    '"url": "https://example.org/egret", "snippet": "wingspan \\udfff 131 cm"}]}\n')
    out = tmp_path / "t.jsonl"
    rc = main(["ask", "-c", "configs/ask_fixture.yaml", "--json", "--out", str(out), "Wingspan?",
               f"agent.text_search.path={hits}"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    calls = [t["tool_call"] for t in printed["turns"] if t["tool_call"]]
    assert any("\ud800" in h["title"] or "\ufffd" in h["title"] for c in calls for h in c["hits"])
    assert json.loads(out.read_text(encoding="utf-8"))["id"] == printed["id"]


# -- secrets -----------------------------------------------------------------------------------

KEYS = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"),
               min_size=20, max_size=60)


class _Body:
    def __init__(self, data: object) -> None:
        self.content = json.dumps(data).encode()


@FAST
@given(key=KEYS, pad=st.integers(0, 260), form=st.sampled_from(
    ["Authorization: Bearer {k}", "X-API-KEY: {k}", "X-Subscription-Token: {k}", "api_key={k}"]))
def test_no_key_fragment_survives_an_error_body(key, pad, form) -> None:
    register_secret(key)
    body = "x" * pad + " echo of your request: " + form.format(k=key) + " end"
    for data in ({"error": body}, {"error": {"message": body}}, {"detail": body}):
        detail = _error_detail(_Body(data))
        assert len(detail) <= 200
        for i in range(len(key) - 7):  # no 8 consecutive characters of the key
            assert key[i:i + 8] not in detail, (detail, key)


def test_token_shapes_are_masked_even_when_unregistered() -> None:
    text = redact("got Authorization: Bearer sk-live-0123456789abcdef and api_key=zzzzzzzz123")
    assert "0123456789abcdef" not in text and "zzzzzzzz123" not in text
    assert "Bearer ***" in text


# -- SSRF: every form an IPv6 address can carry an IPv4 address in ------------------------------

INTERNAL = st.sampled_from(["127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12",
                            "169.254.0.0/16", "0.0.0.0/8", "100.64.0.0/10"]).flatmap(
    lambda net: st.integers(0, ipaddress.ip_network(net).num_addresses - 1).map(
        lambda i, net=net: ipaddress.ip_network(net)[i]))


def _forms(v4: ipaddress.IPv4Address) -> dict[str, str]:
    n = int(v4)
    inv = n ^ 0xFFFFFFFF
    return {
        "mapped": f"::ffff:{v4}",
        "6to4": str(ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | 1)),
        "nat64": f"64:ff9b::{v4}",
        "nat64-local": str(ipaddress.IPv6Address((0x0064FF9B0001 << 80) | n)),
        "teredo": str(ipaddress.IPv6Address((0x20010000 << 96) | (0x01020304 << 64) | inv)),
        "compat": f"::{v4}",
    }


@FAST
@given(INTERNAL)
def test_every_embedded_internal_ipv4_is_refused(v4) -> None:
    assert address_refusal(str(v4)) is not None
    for form, addr in _forms(v4).items():
        if form == "compat" and int(v4) <= 1:
            continue  # ::, ::1 are IPv6's own unspecified and loopback (refused as such)
        assert address_refusal(addr) is not None, (form, addr)


def test_6to4_wrapping_loopback_is_refused_and_public_forms_pass() -> None:
    assert "loopback" in address_refusal("2002:7f00:1::1")
    assert address_refusal("2002:5db8:d822::1") is None  # 6to4 of 93.184.216.34 (public)
    assert address_refusal("64:ff9b::5db8:d822") is None
    assert address_refusal("2606:4700::1111") is None


# -- sources -----------------------------------------------------------------------------------


@FAST
@given(st.sampled_from(["javascript", "JavaScript", "data", "vbscript", "file", "ftp", " javascript",
                        "blob", "about"]), HOSTILE_TEXT)
def test_non_http_sources_are_dropped(scheme, rest) -> None:
    assert not is_source_url(f"{scheme}:{rest}")


def test_http_and_doc_sources_are_kept() -> None:
    assert all(is_source_url(u) for u in ("https://a.example/x", "HTTP://b.example", "doc:17"))


def test_an_answer_never_cites_a_javascript_hit(tmp_path, capsys) -> None:
    from deepmmsearch.cli import main

    hits = tmp_path / "hits.jsonl"
    rows = [{"title": "Great egret", "url": u, "snippet": "Its wingspan is 131 to 170 cm."}
            for u in ("javascript:alert(document.cookie)", "data:text/html,<b>x</b>",
                      "https://example.org/great-egret")]
    hits.write_text(json.dumps({"query": "*", "hits": rows}) + "\n")
    assert main(["ask", "-c", "configs/ask_fixture.yaml", "--json", "Wingspan?",
                 f"agent.text_search.path={hits}"]) == 0
    assert json.loads(capsys.readouterr().out)["sources"] == ["https://example.org/great-egret"]
