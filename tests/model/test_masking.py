"""Loss masks: the SFT labels equal, token by token, the env_mask the rollout builds while the
``hf`` policy generates; every injected ``<information>`` span is masked."""

from __future__ import annotations

import asyncio

import pytest

from deepmmsearch.agent.loop import run_episode
from deepmmsearch.conversation.encoding import IGNORE_INDEX, encode_messages, encode_trajectory
from deepmmsearch.models.processor import ImageEncoder
from deepmmsearch.policies.hf import HFPolicy
from deepmmsearch.train.sft_data import encode_examples, read_examples
from deepmmsearch.types import Message

from .conftest import ScriptForcer, entity_episode, make_toolbox, write_jsonl


class _Capture:
    """Wraps a policy and keeps every Generation (the ids the model really sampled)."""

    def __init__(self, inner):
        self.inner, self.name, self.gens = inner, inner.name, []

    async def generate(self, request):
        gen = await self.inner.generate(request)
        self.gens.append(gen)
        return gen


@pytest.fixture(scope="module")
def rollout(tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rollout")
    policy = HFPolicy.from_objects(*tiny, extra_processors=[ScriptForcer(tiny[1].tokenizer)])
    cap = _Capture(policy)
    traj = asyncio.run(run_episode(entity_episode(folder, 5), cap, make_toolbox()))
    assert traj.stop_reason == "answer"
    return policy, cap.gens, traj, folder


def test_sft_labels_equal_rollout_env_mask(rollout, tiny):
    policy, _, traj, folder = rollout
    rl = policy.rollout_tokens(traj, forget=False)
    # the SFT path: the trajectory written as a dataset row, read back and encoded
    path = write_jsonl([traj], folder / "one.jsonl")
    images = ImageEncoder(tiny[1].image_processor)
    (row,) = encode_examples(read_examples(path), tiny[1].tokenizer, images)
    assert row["input_ids"] == rl.input_ids
    sft_mask = [int(x != IGNORE_INDEX) for x in row["labels"]]
    assert sft_mask == rl.loss_mask
    assert [x for x in row["labels"] if x != IGNORE_INDEX] == [
        t for t, m in zip(rl.completion_ids, rl.env_mask) if m]


def test_rollout_model_tokens_are_the_sampled_ids(rollout):
    policy, gens, traj, _ = rollout
    rl = policy.rollout_tokens(traj, forget=False)
    model_ids = [t for t, m in zip(rl.completion_ids, rl.env_mask) if m]
    assert model_ids == [t for g in gens for t in g.token_ids]
    assert rl.logprobs is not None and len(rl.logprobs) == len(rl.completion_ids)
    sampled = [lp for lp, m in zip(rl.logprobs, rl.env_mask) if m]
    assert sampled == [lp for g in gens for lp in g.logprobs]


def test_masked_tokens_are_exactly_the_injected_text(rollout, tiny):
    policy, _, traj, _ = rollout
    rl = policy.rollout_tokens(traj, forget=False)
    tok = tiny[1].tokenizer
    injected = tok.decode([t for t, m in zip(rl.completion_ids, rl.env_mask) if not m])
    assert injected == "".join(t.observation for t in traj.turns if t.observation)
    trained = tok.decode([t for t, m in zip(rl.completion_ids, rl.env_mask) if m])
    assert "<information>" not in trained and trained == "".join(t.model_text for t in traj.turns)
    assert tok.decode(rl.prompt_ids).endswith("<|im_start|>assistant\n")


def test_rollout_forgets_the_episode(rollout):
    policy, _, traj, _ = rollout
    before = policy.rollout_tokens(traj, forget=True)
    after = policy.rollout_tokens(traj)  # re-tokenised text: same ids here, no log-probs
    assert after.input_ids == before.input_ids and after.logprobs is None


def test_image_pads_are_expanded_in_the_prompt(tiny, tmp_path):
    tok = tiny[1].tokenizer
    msgs = [Message("user", "<image>Q?", images=("x.png",)), Message("assistant", "<answer>a</answer>")]
    enc = encode_messages(tok, msgs, image_tokens=[6])
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    assert enc.prompt_ids.count(pad) == 6 and enc.images == ["x.png"]
    with pytest.raises(ValueError, match="image"):
        encode_messages(tok, msgs, image_tokens=[])


def test_prompt_matches_the_hf_processor(tiny, tmp_path):
    """Our segment encoding of the prompt equals the stock processor's ids for the same text."""
    from deepmmsearch.conversation.template import render_text

    from .conftest import entity_image

    _, processor = tiny
    path = entity_image(tmp_path, 4)
    msgs = [Message("user", "<image>What is it?", images=(path,))]
    enc = encode_messages(processor.tokenizer, msgs,
                          image_tokens=ImageEncoder(processor.image_processor).token_counts([path]))
    from deepmmsearch.tools.crop import load_image

    out = processor(text=[render_text(msgs)], images=[load_image(path)], return_tensors="pt")
    assert out["input_ids"][0].tolist() == enc.prompt_ids


def test_trajectory_with_invalid_turn_masks_the_corrective_observation(tiny, sft_data):
    trajs, _ = sft_data
    traj = trajs[0]
    from deepmmsearch.types import Action, Turn

    bad = Turn(0, "garbage", Action("invalid", error="no action tag"),
               observation="<information>invalid turn: no action tag</information>")
    traj2 = type(traj).from_dict(traj.to_dict())
    traj2.turns = [bad] + [Turn(t.index + 1, t.model_text, t.action, t.observation)
                           for t in traj2.turns]
    tok = tiny[1].tokenizer
    enc = encode_trajectory(tok, traj2, [ImageEncoder(tiny[1].image_processor).token_counts(
        [traj.image])[0]])
    masked = tok.decode([t for t, m in zip(enc.completion_ids, enc.env_mask) if not m])
    assert masked.startswith("<information>invalid turn")
    assert tok.decode([t for t, m in zip(enc.completion_ids, enc.env_mask) if m]).startswith("garbage")
