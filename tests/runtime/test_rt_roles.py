"""One contract per role (policy, summarizer, judge), over every name in its registry table.

The tables are read from :mod:`deepmmsearch.registry`, so a new backend lands here by itself and
fails until the contract builds it offline (a local fake server, a tiny random model, a small
SimWeb world). The other roles' contracts: tests/text/test_text_contract.py (text search),
tests/image/test_image_contract.py (image search, image hosts), tests/image/test_image_grounders.py
(grounders), tests/data/test_data_contract.py (dataset loaders).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deepmmsearch import roles
from deepmmsearch.agent.state import Episode
from deepmmsearch.policies.base import Generation, GenerationRequest
from deepmmsearch.protocol import STOP_STRINGS
from deepmmsearch.registry import ALL, JUDGE, POLICY, SUMMARIZER
from deepmmsearch.types import SearchHit, Verdict

from .openai_server import FakeChatServer

REPLY = "<reason>I know it.</reason><answer>Paris</answer>"
CONTRACT_FILES = {
    "policy": "tests/runtime/test_rt_roles.py", "summarizer": "tests/runtime/test_rt_roles.py",
    "judge": "tests/runtime/test_rt_roles.py", "text_search": "tests/text/test_text_contract.py",
    "image_search": "tests/image/test_image_contract.py",
    "image_host": "tests/image/test_image_contract.py",
    "grounder": "tests/image/test_image_grounders.py", "dataset": "tests/data/test_data_contract.py",
}
PROTOCOLS = {"policy": roles.Policy, "summarizer": roles.Summarizer, "judge": roles.Judge,
             "text_search": roles.TextSearch, "image_search": roles.ImageSearch,
             "image_host": roles.ImageHost, "grounder": roles.Grounder}


def test_every_role_has_a_protocol_and_a_contract_test():
    assert set(CONTRACT_FILES) == set(ALL)
    assert set(PROTOCOLS) | {"dataset"} == set(ALL)
    for role, path in CONTRACT_FILES.items():
        text = Path(path).read_text(encoding="utf-8")
        assert "names()" in text, (role, path)  # parametrised over the registry table
        proto = PROTOCOLS.get(role, roles.DatasetLoader)
        assert proto.__doc__ and proto.__module__ == "deepmmsearch.roles"


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    from deepmmsearch.simweb.build import build_world

    root = tmp_path_factory.mktemp("roles_world")
    build_world(root, seed=0, size="small", entities=20, indexes=False, overwrite=True,
                progress=False, jobs=1)
    return root


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from deepmmsearch.models.loading import save_model_dir
    from deepmmsearch.models.tiny import TinySpec, build_tiny, default_texts

    model, processor = build_tiny(default_texts(), TinySpec(vocab_size=400))
    return save_model_dir(model, processor, tmp_path_factory.mktemp("roles_tiny") / "model")


@pytest.fixture(scope="module")
def chat_server():
    with FakeChatServer(turns=[REPLY] * 50, by_model={"summary-model": "A short summary.",
                                                     "judge-model": "[CORRECT]"}) as srv:
        yield srv


def _policy_spec(name, world_dir, tiny_model_dir, chat_server):
    return {
        "scripted": {"name": "scripted", "turns": [REPLY]},
        "hf": {"name": "hf", "model": str(tiny_model_dir), "device": "cpu", "dtype": "float32",
               "max_new_tokens": 6, "torch_threads": 1},
        "openai": {"name": "openai", "model": "qwen-test", "base_url": chat_server.base_url,
                   "retry_backoff_s": 0.0},
        "simweb-expert": {"name": "simweb-expert", "world": str(world_dir)},
        "simweb-prior": {"name": "simweb-prior", "world": str(world_dir)},
    }[name]


@pytest.mark.parametrize("name", POLICY.names())
async def test_policy_contract(name, world_dir, tiny_model_dir, chat_server):
    """A turn for the first prompt: text that ends at the first action's closing tag, if any."""
    policy = POLICY.build(_policy_spec(name, world_dir, tiny_model_dir, chat_server))
    assert isinstance(policy, roles.Policy) and isinstance(policy.name, str)
    from deepmmsearch.simweb.world import World

    q = next(iter(World.load(world_dir).questions.values()))
    ep = Episode(q.question if name.startswith("simweb") else "What is the capital of France?",
                 None, episode_id=name)
    gen = await policy.generate(GenerationRequest(ep.messages(), max_new_tokens=64,
                                                  question=ep.question, metadata={"id": q.id}))
    assert isinstance(gen, Generation) and isinstance(gen.text, str)
    ends = [gen.text.find(s) + len(s) for s in STOP_STRINGS if s in gen.text]
    if ends:
        assert min(ends) == len(gen.text), gen.text  # nothing after the first action
    if gen.token_ids is not None and gen.logprobs is not None:
        assert len(gen.token_ids) == len(gen.logprobs)


HITS = [SearchHit(title="Great egret", url="https://birds.example/egret",
                  snippet="The great egret is a large heron. Its wingspan is 131 to 170 cm."),
        SearchHit(title="Herons", url="https://birds.example/herons", snippet="Herons wade.")]


@pytest.mark.parametrize("name", SUMMARIZER.names())
@pytest.mark.parametrize("kind", ["text", "image"])
async def test_summarizer_contract(name, kind, chat_server):
    """A string for any hits, an empty list of hits included."""
    opts = {"llm": {"model": {"name": "openai", "model": "summary-model",
                              "base_url": chat_server.base_url, "retry_backoff_s": 0.0}}}
    s = SUMMARIZER.build({"name": name, **opts.get(name, {})})
    assert isinstance(s, roles.Summarizer) and isinstance(s.name, str)
    text = await s.summarize(kind, "What is the wingspan of this bird?", "egret wingspan", HITS)
    assert isinstance(text, str) and text.strip()
    assert isinstance(await s.summarize(kind, "q?", "nothing", []), str)


@pytest.mark.parametrize("name", JUDGE.names())
async def test_judge_contract(name, chat_server):
    """A Verdict; give-up and empty answers are incorrect without asking anyone."""
    opts = {"llm": {"policy": {"name": "openai", "model": "judge-model",
                               "base_url": chat_server.base_url, "retry_backoff_s": 0.0}},
            "fixture": {"verdicts": {"Paris": True}}}
    judge = JUDGE.build({"name": name, **opts.get(name, {})})
    assert isinstance(judge, roles.Judge) and isinstance(judge.name, str)
    v = await judge.judge("What is the capital of France?", "Paris", ["Paris"])
    assert isinstance(v, Verdict) and v.correct is True
    for bad in (None, "", "Unable to answer due to lack of relevant information."):
        before = len(chat_server.requests)
        got = await judge.judge("What is the capital of France?", bad, ["Paris"])
        assert got.correct is False and len(chat_server.requests) == before
