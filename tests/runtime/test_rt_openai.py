"""The ``openai`` policy against a local OpenAI-compatible server (tests/runtime/openai_server.py).

Run: .venv/bin/pytest tests/runtime/test_rt_openai.py -q
"""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import pytest
from PIL import Image

from deepmmsearch.agent.loop import run_episode, run_episodes
from deepmmsearch.agent.state import Episode
from deepmmsearch.config import Limits, load_config
from deepmmsearch.policies.base import GenerationRequest
from deepmmsearch.policies.openai_compat import (
    ABSENT,
    OpenAIPolicy,
    PolicyError,
    image_data_url,
    restore_stop,
    to_openai_messages,
)
from deepmmsearch.protocol import STOP_STRINGS
from deepmmsearch.registry import POLICY, ConfigError
from deepmmsearch.types import Message

from .openai_server import FakeChatServer, completion
from .rt_tools import ANSWER, BAD, CROP, TEXT, make_toolbox

IMG = "tests/fixtures/scene.png"
QUESTION = "What is the wingspan of this bird?"


def _policy(srv: FakeChatServer, **kw) -> OpenAIPolicy:
    kw.setdefault("retry_backoff_s", 0.0)
    return OpenAIPolicy(model="qwen-test", base_url=srv.base_url, **kw)


def _episode(**limits) -> Episode:
    return Episode(QUESTION, IMG, limits=Limits(**limits), episode_id="oa")


@pytest.mark.parametrize("report_stop", [False, True])
async def test_whole_episode(report_stop):
    with FakeChatServer(turns=[CROP, TEXT, ANSWER], report_stop=report_stop) as srv:
        policy = _policy(srv)
        traj = await run_episode(_episode(), policy, make_toolbox())
        await policy.aclose()
    assert traj.stop_reason == "answer" and traj.answer == "131 to 170 cm"
    assert [t.model_text for t in traj.turns] == [CROP, TEXT, ANSWER]  # closing tags restored
    assert [t.n_tokens for t in traj.turns] == [len(t) // 4 for t in (CROP, TEXT, ANSWER)]
    assert len(traj.tool_calls) == 2 and srv.paths == ["/v1/chat/completions"] * 3

    first = srv.requests[0]
    assert first["model"] == "qwen-test" and first["stop"] == list(STOP_STRINGS)
    assert first["temperature"] == 0.0 and first["max_tokens"] == 1024
    (user,) = first["messages"]
    parts = user["content"]
    kinds = [p["type"] for p in parts]
    assert kinds == ["text", "image_url", "text"]  # the image sits at the <image> placeholder
    assert parts[2]["text"] == QUESTION and "<image>" not in parts[0]["text"]
    url = parts[1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == Path(IMG).read_bytes()

    last = srv.requests[2]["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert last[1]["content"] == CROP and last[3]["content"] == TEXT
    assert last[2]["content"].startswith("<information>")  # the tool injection, as a user turn
    assert "authorization" not in srv.headers[0]  # no key in the environment: none is sent


async def test_api_key_from_environment(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-test-123")
    with FakeChatServer(turns=[ANSWER]) as srv:
        await run_episode(_episode(), _policy(srv, api_key_env="MY_KEY"), make_toolbox())
    assert srv.headers[0]["authorization"] == "Bearer sk-test-123"


async def test_options_reach_the_server():
    with FakeChatServer(turns=[ANSWER]) as srv:
        policy = _policy(srv, temperature=0.7, top_p=0.9, extra_body={"top_k": 20, "seed": 1},
                         max_tokens_field="max_completion_tokens")
        gen = await policy.generate(GenerationRequest([Message("user", "hi")], max_new_tokens=33))
    body = srv.requests[0]
    assert (body["temperature"], body["top_p"], body["top_k"], body["seed"]) == (0.7, 0.9, 20, 1)
    assert body["max_completion_tokens"] == 33 and "max_tokens" not in body
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert gen.text == ANSWER and gen.finish_reason == "stop"


async def test_without_server_stop_the_client_cuts():
    two = TEXT + ANSWER  # a model that runs past its action
    with FakeChatServer(turns=[two]) as srv:
        gen = await _policy(srv, send_stop=False).generate(
            GenerationRequest([Message("user", "hi")]))
    assert "stop" not in srv.requests[0] and gen.text == TEXT


async def test_summariser_requests_send_no_stop():
    with FakeChatServer(replies=[(200, completion("A summary."), {})]) as srv:
        gen = await _policy(srv).generate(GenerationRequest([Message("user", "sum")], stop=()))
    assert "stop" not in srv.requests[0] and gen.text == "A summary."


async def test_inline_tools_continue_one_assistant_message():
    with FakeChatServer(turns=[TEXT, ANSWER]) as srv:
        traj = await run_episode(_episode(), _policy(srv, inline_tools=True), make_toolbox())
    assert traj.answer == "131 to 170 cm"
    second = srv.requests[1]
    assert second["continue_final_message"] is True and second["add_generation_prompt"] is False
    assert [m["role"] for m in second["messages"]] == ["user", "assistant"]
    assert second["messages"][1]["content"] == TEXT + traj.turns[0].observation
    assert "continue_final_message" not in srv.requests[0]


async def test_retries_on_500_then_succeeds():
    replies = [(500, {"error": "boom"}, {}), (503, "upstream down", {}),
               (429, {"error": "slow"}, {"retry-after": "0"})]
    with FakeChatServer(turns=[ANSWER], replies=replies) as srv:
        traj = await run_episode(_episode(), _policy(srv, max_retries=3), make_toolbox())
    assert traj.stop_reason == "answer" and len(srv.requests) == 4


async def test_retries_exhausted_is_a_policy_error():
    replies = [(500, {"error": "boom"}, {})] * 3
    with FakeChatServer(replies=replies) as srv:
        traj = await run_episode(_episode(), _policy(srv, max_retries=2), make_toolbox())
    assert traj.stop_reason == "policy_error" and len(srv.requests) == 3
    assert "failed after 3 attempts: HTTP 500" in traj.metadata["policy_error"]


async def test_client_errors_are_not_retried():
    with (FakeChatServer(replies=[(400, {"error": "max_tokens is too large"}, {})]) as srv,
          pytest.raises(PolicyError, match="HTTP 400.*max_tokens is too large")):
        await _policy(srv).generate(GenerationRequest([Message("user", "hi")]))
    assert len(srv.requests) == 1


@pytest.mark.parametrize("body", ["this is not json", {"object": "error"}, {"choices": []}])
async def test_malformed_replies_are_retried_then_fail(body):
    with (FakeChatServer(replies=[(200, body, {})] * 2) as srv,
          pytest.raises(PolicyError, match="malformed")):
        await _policy(srv, max_retries=1).generate(GenerationRequest([Message("user", "hi")]))
    assert len(srv.requests) == 2


async def test_garbage_model_text_gets_a_corrective_observation():
    with FakeChatServer(turns=[BAD, "<answer>no reason", ANSWER]) as srv:
        traj = await run_episode(_episode(), _policy(srv), make_toolbox())
    assert [t.action.kind for t in traj.turns] == ["invalid", "invalid", "answer"]
    assert "no action tag" in traj.turns[0].observation
    assert traj.turns[1].model_text == "<answer>no reason</answer>"  # stop restored, still invalid
    assert traj.stop_reason == "answer"


async def test_null_content_and_missing_usage():
    reply = completion(None, "length")
    del reply["usage"]
    with FakeChatServer(replies=[(200, reply, {})]) as srv:
        gen = await _policy(srv).generate(GenerationRequest([Message("user", "hi")]))
    assert gen.text == "" and gen.n_tokens is None and gen.finish_reason == "length"


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def test_server_down_is_a_policy_error():
    policy = OpenAIPolicy(model="m", base_url=f"http://127.0.0.1:{_free_port()}/v1",
                          max_retries=1, retry_backoff_s=0.0, timeout=2.0)
    traj = await run_episode(_episode(), policy, make_toolbox())
    assert traj.stop_reason == "policy_error" and traj.turns == []
    assert "ConnectError" in traj.metadata["policy_error"]


async def test_timeout_is_retried_then_fails():
    with FakeChatServer(turns=[ANSWER], delay_s=0.5) as srv:
        policy = _policy(srv, timeout=0.1, max_retries=1)
        with pytest.raises(PolicyError, match="ReadTimeout"):
            await policy.generate(GenerationRequest([Message("user", "hi")]))
    assert len(srv.headers) == 2


async def test_many_episodes_share_the_endpoint():
    with FakeChatServer(turns=[TEXT, ANSWER]) as srv:
        eps = [Episode(QUESTION, IMG, episode_id=f"e{i}") for i in range(8)]
        trajs = await run_episodes(eps, _policy(srv), make_toolbox(), concurrency=8)
    assert all(t.answer == "131 to 170 cm" for t in trajs) and len(srv.requests) == 16


# --- pure helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize("text,finish,matched,expected", [
    ("<reason>r</reason><text_search>q", "stop", ABSENT, "<reason>r</reason><text_search>q</text_search>"),
    ("<reason>r</reason><img_search><img>", "stop", ABSENT, "<reason>r</reason><img_search><img></img_search>"),
    ("<reason>r</reason><answer>a", "stop", None, "<reason>r</reason><answer>a"),  # vLLM: EOS
    ("<reason>r</reason><answer>a", "stop", "</answer>", "<reason>r</reason><answer>a</answer>"),
    ("<reason>r</reason><answer>a", "stop", 151645, "<reason>r</reason><answer>a"),  # EOS token id
    ("<reason>r</reason><answer>a", "length", ABSENT, "<reason>r</reason><answer>a"),
    ("<reason>r</reason><answer>a</answer>", "stop", ABSENT, "<reason>r</reason><answer>a</answer>"),
    ("<reason>r</reason><answer>a</answer> more", "stop", None, "<reason>r</reason><answer>a</answer>"),
    ("just words", "stop", ABSENT, "just words"),
    ("<answer>a</answer><text_search>q", "stop", ABSENT, "<answer>a</answer>"),
    ("<reason>r</reason><text_search>a</text_search>", "stop", ABSENT,
     "<reason>r</reason><text_search>a</text_search>"),
])
def test_restore_stop(text, finish, matched, expected):
    assert restore_stop(text, finish, matched, STOP_STRINGS) == expected


def test_message_conversion():
    enc = lambda p: f"data:{p}"
    msgs = [
        Message("system", "be brief"),
        Message("user", "look <image> and <image> now", images=("a.png", "b.png")),
        Message("user", "no slot", images=("c.png",)),
        Message("assistant", TEXT),
        Message("tool", "<information>x</information>"),
        Message("user", "stray <image> placeholder"),
    ]
    out, cont = to_openai_messages(msgs, enc)
    assert not cont
    assert out[0] == {"role": "system", "content": "be brief"}
    assert out[1]["content"] == [
        {"type": "text", "text": "look "}, {"type": "image_url", "image_url": {"url": "data:a.png"}},
        {"type": "text", "text": " and "}, {"type": "image_url", "image_url": {"url": "data:b.png"}},
        {"type": "text", "text": " now"}]
    assert out[2]["content"] == [{"type": "image_url", "image_url": {"url": "data:c.png"}},
                                 {"type": "text", "text": "no slot"}]
    assert out[4] == {"role": "user", "content": "<information>x</information>"}
    assert out[5]["content"] == "stray  placeholder"
    inline, cont = to_openai_messages(msgs[:5], enc, inline_tools=True)
    assert cont and inline[-1] == {"role": "assistant", "content": TEXT + "<information>x</information>"}


def test_image_data_urls(tmp_path):
    assert image_data_url(IMG).startswith("data:image/png;base64,")
    tif = tmp_path / "x.tiff"
    Image.new("RGB", (8, 6), "red").save(tif)
    url = image_data_url(str(tif))
    assert url.startswith("data:image/png;base64,")
    jpg = tmp_path / "x.jpg"
    Image.new("RGB", (8, 6), "red").save(jpg)
    assert image_data_url(str(jpg)).startswith("data:image/jpeg;base64,")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    from deepmmsearch.tools.crop import ImageLoadError

    with pytest.raises(ImageLoadError, match="cannot read image"):
        image_data_url(str(bad))
    with pytest.raises(ImageLoadError, match="image not found"):
        image_data_url(str(tmp_path / "missing.png"))


async def test_missing_image_ends_the_episode_clearly():
    with FakeChatServer(turns=[ANSWER]) as srv:
        ep = Episode(QUESTION, "nope/missing.png")
        traj = await run_episode(ep, _policy(srv), make_toolbox())
    assert traj.stop_reason == "policy_error" and "image not found" in traj.metadata["policy_error"]
    assert srv.requests == []


def test_registry_and_config():
    pol = POLICY.build({"name": "openai", "model": "m", "base_url": "http://localhost:1/v1/"})
    assert isinstance(pol, OpenAIPolicy) and pol.base_url == "http://localhost:1/v1"
    cfg = load_config(data={"agent": {"policy": {"name": "openai", "model": "m", "timeout": 5}}})
    assert cfg.agent.policy.options["timeout"] == 5
    with pytest.raises(ConfigError, match="needs 'model'"):
        POLICY.build({"name": "openai", "model": ""})
    with pytest.raises(ConfigError, match="missing a required argument: 'model'"):
        load_config(data={"agent": {"policy": "openai"}})


async def test_llm_summariser_through_the_openai_policy():
    from deepmmsearch.tools.summarize import LLMSummarizer

    summary = "The great egret spans 131 to 170 cm."
    with FakeChatServer(turns=[TEXT, ANSWER], by_model={"summ": summary}) as srv:
        summ = LLMSummarizer(model={"name": "openai", "model": "summ", "base_url": srv.base_url})
        traj = await run_episode(_episode(), _policy(srv), make_toolbox(summarizer=summ))
    assert traj.answer == "131 to 170 cm"
    req = srv.requests[1]  # turn 0 by the policy, then the summary, then turn 1
    assert req["model"] == "summ" and "stop" not in req
    assert "great egret wingspan" in req["messages"][0]["content"]
    assert traj.tool_calls[0].summary == summary
    assert traj.turns[0].observation.startswith(f"<information>{summary}</information>")
    assert traj.tool_calls[0].summarizer == "llm"
