"""The ``hf`` policy on the tiny random Qwen2.5-VL: stop at the action tag, continue after the
injected ``<information>``, token suppression, log-probs, batching, loading from a directory."""

from __future__ import annotations

import asyncio

import pytest
import torch

from deepmmsearch.agent.loop import run_episode, run_episodes
from deepmmsearch.policies.base import GenerationRequest
from deepmmsearch.policies.hf import HFPolicy
from deepmmsearch.registry import POLICY
from deepmmsearch.types import Message

from .conftest import ENTITIES, ScriptForcer, entity_episode, entity_script, make_toolbox


def _policy(tiny, **kw) -> HFPolicy:
    model, processor = tiny
    return HFPolicy.from_objects(model, processor, **kw)


def test_episode_stops_at_tag_and_continues_after_information(tiny, tmp_path):
    policy = _policy(tiny, extra_processors=[ScriptForcer(tiny[1].tokenizer)])
    name, speed = ENTITIES[3]
    traj = asyncio.run(run_episode(entity_episode(tmp_path, 3), policy, make_toolbox()))
    # The forcer writes JUNK after every action: only stopping right after the tag keeps turns valid.
    assert [t.model_text for t in traj.turns] == entity_script(name, speed)
    assert traj.answer == f"{speed} km/h" and traj.stop_reason == "answer"
    # The name and the speed exist only in the tool outputs: the model read the <information>.
    assert name in traj.turns[0].observation and speed in traj.turns[1].observation
    assert [t.tool_call.kind for t in traj.turns[:2]] == ["image_search", "text_search"]


def test_generation_fields_and_stop_reason(tiny, tmp_path):
    policy = _policy(tiny, extra_processors=[ScriptForcer(tiny[1].tokenizer)])
    ep = entity_episode(tmp_path, 0)
    gen = policy.generate_sync(GenerationRequest(ep.messages(), episode_id=ep.id, max_new_tokens=64))
    assert gen.text == entity_script(*ENTITIES[0])[0]
    assert gen.finish_reason == "stop" and gen.n_tokens == len(gen.token_ids) == len(gen.logprobs)
    assert tiny[1].tokenizer.decode(gen.token_ids) == gen.text
    assert all(lp == pytest.approx(0.0, abs=1e-3) for lp in gen.logprobs)  # forced: probability 1


def test_budget_gives_length_and_logprobs_match_a_forward_pass(tiny, tmp_path):
    policy = _policy(tiny)  # the random model, greedy
    ep = entity_episode(tmp_path, 1)
    req = GenerationRequest(ep.messages(), episode_id=ep.id, max_new_tokens=6, stop=())
    gen = policy.generate_sync(req)
    assert gen.finish_reason in ("length", "eos") and 1 <= gen.n_tokens <= 6
    enc = policy.encode(ep.messages())
    ids = torch.tensor([enc.input_ids + gen.token_ids])
    vision = policy.images.encode(enc.images)
    model = tiny[0]
    with torch.no_grad():
        logits = model(input_ids=ids, mm_token_type_ids=(ids == policy.image_token_id).long(),
                       **vision).logits[0, len(enc.input_ids) - 1:-1]
    logits[:, list(policy.options.suppress_ids)] = float("-inf")
    ref = torch.log_softmax(logits, -1).gather(1, torch.tensor(gen.token_ids)[:, None]).squeeze(1)
    assert torch.allclose(ref, torch.tensor(gen.logprobs), atol=1e-4)


class _BoostVision:
    """Pushes the vision tokens to the top: suppression must still win."""

    def __init__(self, ids):
        self.ids = list(ids)

    def __call__(self, input_ids, scores):
        scores[:, self.ids] += 1e4
        return scores


def test_vision_tokens_are_never_generated(tiny, tmp_path):
    policy = _policy(tiny, temperature=1.0, seed=0)
    policy.extra_processors = [_BoostVision(policy.options.suppress_ids)]
    ep = entity_episode(tmp_path, 2)
    gen = policy.generate_sync(GenerationRequest(ep.messages(), max_new_tokens=20, stop=()))
    assert not set(gen.token_ids) & set(policy.options.suppress_ids)
    assert all(lp <= 0.0 for lp in gen.logprobs)


def test_concurrent_episodes_are_batched_like_sequential_ones(tiny, tmp_path):
    toolbox = make_toolbox()
    eps = [entity_episode(tmp_path, i) for i in range(3)]
    for ep in eps:
        ep.limits = type(ep.limits)(max_new_tokens_per_turn=8, max_turns=2)
    batched = _policy(tiny)
    together = asyncio.run(run_episodes(eps, batched, toolbox, concurrency=3))
    assert batched.batch_sizes[3] >= 1
    alone = _policy(tiny, max_batch_size=1)
    for i, traj in enumerate(together):
        ep = entity_episode(tmp_path, i)
        ep.limits = eps[i].limits
        one = asyncio.run(run_episode(ep, alone, toolbox))
        assert [t.model_text for t in one.turns] == [t.model_text for t in traj.turns]


def test_loads_from_a_directory_through_the_registry(tiny_dir, tmp_path):
    policy = POLICY.build({"name": "hf", "model": str(tiny_dir), "device": "cpu", "dtype": "float32",
                           "max_new_tokens": 4, "torch_threads": 1})
    assert isinstance(policy, HFPolicy) and policy.source == str(tiny_dir)
    ep = entity_episode(tmp_path, 0)
    gen = policy.generate_sync(GenerationRequest(ep.messages(), max_new_tokens=50, stop=()))
    assert gen.n_tokens <= 4


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        HFPolicy(str(tmp_path / "nope"), device="cpu")


def test_bad_options_are_config_errors():
    from deepmmsearch.registry import ConfigError

    with pytest.raises(ConfigError):
        HFPolicy("unused", temperature=-1.0)


def test_text_only_conversation(tiny):
    policy = _policy(tiny)
    gen = policy.generate_sync(GenerationRequest([Message("user", "hello")], max_new_tokens=3, stop=()))
    assert gen.n_tokens <= 3
