"""The vLLM rollout policy (train/grpo_vllm.py) against recording fakes of TRL's vLLM objects.

No GPU and no vllm here: these tests check what the policy sends (prompt ids with the image pads
expanded, the image, stop strings kept, log-probs requested, per-turn budgets), what it makes of
the answers (ids, log-probs, finish reasons, vision tokens cut), the server path (image features
cached per image and placed on the prompt), the distributed rounds (two ranks as threads) and the
sleep-mode session. The real engine is untested (docs/LOG.md).
"""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from deepmmsearch.protocol import STOP_STRINGS
from deepmmsearch.train.grpo_vllm import (
    ColocateEngine,
    Lockstep,
    SamplingSpec,
    ServerEngine,
    VLLMOut,
    VLLMRolloutPolicy,
    VLLMRow,
)


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    from deepmmsearch.models.loading import load_model_and_processor

    return load_model_and_processor(tiny_model_dir, device="cpu", dtype="float32")


class FakeLLM:
    """``vllm.LLM`` stand-in: answers each prompt with the next turn of its entity's script."""

    def __init__(self, tokenizer, scripts_by_width, tail=()):
        self.tok, self.scripts, self.tail = tokenizer, scripts_by_width, list(tail)
        self.calls, self.turn = [], {}

    def generate(self, prompts, sampling_params=None, use_tqdm=True):
        self.calls.append((prompts, sampling_params))
        outs = []
        for p in prompts:
            width = p["multi_modal_data"]["image"].size[0]
            k = self.turn.get(width, 0)
            self.turn[width] = k + 1
            ids = self.tok.encode(self.scripts[width][k], add_special_tokens=False) + self.tail
            lps = [{t: SimpleNamespace(logprob=-0.01 * (i + 1), rank=1)} for i, t in enumerate(ids)]
            outs.append(SimpleNamespace(prompt_token_ids=p["prompt_token_ids"],
                                        outputs=[SimpleNamespace(token_ids=ids, logprobs=lps)]))
        return outs


def _episodes(world, n_turn_tokens=48):
    from deepmmsearch.agent.state import Episode
    from deepmmsearch.config import Limits
    from deepmmsearch.prompts import COMPACT

    lim = Limits(max_turns=4, max_new_tokens_per_turn=n_turn_tokens, max_response_tokens=160)
    import json

    rows = [json.loads(line) for line in world["samples"].read_text().splitlines()]
    return [Episode(r["question"], str(world["root"] / r["image"]), prompts=COMPACT, limits=lim,
                    episode_id=r["id"], gold=r["answers"]) for r in rows]


def _toolbox(world):
    from deepmmsearch.agent.toolbox import Toolbox
    from deepmmsearch.tools.image.fixture import FixtureImageSearch
    from deepmmsearch.tools.summarize import PassthroughSummarizer
    from deepmmsearch.tools.text.fixture import FixtureTextSearch

    return Toolbox(text_search=FixtureTextSearch(responses=world["text_hits"]),
                   image_search=FixtureImageSearch(responses=world["image_hits"]),
                   summarizer=PassthroughSummarizer())


def _by_width(world):
    return {56 + 2 * i: world["scripts"][f"q{i}"] for i in range(len(world["scripts"]))}


def test_colocate_rollout_sends_our_encoding_and_keeps_sampled_ids(world, loaded):
    from deepmmsearch.agent.loop import run_episodes
    from deepmmsearch.policies.hf import HFPolicy

    model, processor = loaded
    tok = processor.tokenizer
    llm = FakeLLM(tok, _by_width(world))
    policy = VLLMRolloutPolicy.with_engine(model, processor, ColocateEngine(llm, sampling_params=dict),
                                           temperature=0.7, top_p=0.9)
    trajs = asyncio.run(run_episodes(_episodes(world), policy, _toolbox(world), concurrency=4))
    assert all(t.stop_reason == "answer" and len(t.tool_calls) == 2 for t in trajs)
    assert all(t.answer == world["scripts"][t.id][-1].split("<answer>")[1].split("</answer>")[0]
               for t in trajs)
    # what vLLM received: our prompt ids (image pads expanded), the image, our sampling settings
    reference = HFPolicy.from_objects(model, processor)
    prompts, params = llm.calls[0]
    first = _episodes(world)[0]
    want = reference.encode(first.messages()).input_ids
    sent = next(p for p in prompts if p["multi_modal_data"]["image"].size[0] == 56)
    assert sent["prompt_token_ids"] == list(want)
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    assert sent["prompt_token_ids"].count(pad) == 4  # a 56×56 image: 4 image tokens
    for p in params:
        assert p["stop"] == list(STOP_STRINGS) and p["include_stop_str_in_output"] is True
        assert p["logprobs"] == 0 and p["n"] == 1 and p["max_tokens"] == 48
        assert p["temperature"] == 0.7 and p["top_p"] == 0.9
        assert tok.convert_tokens_to_ids("<|im_end|>") in p["stop_token_ids"]
    # later turns re-send the sampled ids; the RL encoding has them with their log-probs, mask 1
    for t in trajs:
        enc = policy.rollout_tokens(t)
        model_ids = [i for i, m in zip(enc.completion_ids, enc.env_mask) if m]
        script = world["scripts"][t.id]
        assert model_ids == [i for turn in script for i in tok.encode(turn, add_special_tokens=False)]
        lps = [lp for lp, m in zip(enc.logprobs, enc.env_mask) if m]
        per_turn = [len(tok.encode(turn, add_special_tokens=False)) for turn in script]
        assert lps == [-0.01 * (i + 1) for n in per_turn for i in range(n)]


def test_generation_finish_reasons_and_vision_tokens(loaded):
    model, processor = loaded
    tok = processor.tokenizer
    policy = VLLMRolloutPolicy.with_engine(model, processor, None)
    spec = policy.spec(STOP_STRINGS)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    ids = tok.encode("<reason>x</reason><answer>41 km/h</answer>", add_special_tokens=False)
    stop = policy._generation(VLLMOut(ids, [-0.5] * len(ids)), spec)
    assert stop.finish_reason == "stop" and stop.text.endswith("</answer>")
    ended = policy._generation(VLLMOut(ids[:3] + [eos], [-0.5] * 4), spec)
    assert ended.finish_reason == "eos" and ended.token_ids[-1] == eos and "<|im_end|>" not in ended.text
    cut = policy._generation(VLLMOut(ids[:3] + [pad] + ids[3:], [-0.1, -0.2, -0.3, -9, -0.5] + [0] * (len(ids) - 4)), spec)
    assert cut.token_ids == ids[:3] and cut.logprobs == [-0.1, -0.2, -0.3] and cut.finish_reason == "length"


class FakeClient:
    def __init__(self):
        self.features, self.generates = [], []

    def image_features(self, images):
        self.features.append(images)
        return [{"mm_placeholders": {"image": [{"offset": -1, "length": 0}]}, "size": imgs[0].size}
                for imgs in images]

    def generate(self, prompts, features=None, n=1, max_tokens=16, logprobs=0, generation_kwargs=None, **kw):
        self.generates.append({"prompts": prompts, "features": features, "max_tokens": max_tokens,
                               "logprobs": logprobs, "kwargs": generation_kwargs, **kw})
        comp = [[7, 8, 9][: 1 + i % 3] for i in range(len(prompts))]
        # ranked entries: the sampled token is second at position 0, first elsewhere
        ranked_ids = [[[5, c[0]]] + [[t] for t in c[1:]] for c in comp]
        ranked = [[[-0.2, -1.5]] + [[-0.3]] * (len(c) - 1) for c in comp]
        return {"prompt_ids": prompts, "completion_ids": comp, "logprobs": ranked, "logprob_token_ids": ranked_ids}


def test_server_engine_caches_features_groups_budgets_and_picks_sampled_logprobs(tmp_path):
    from PIL import Image

    client, placed = FakeClient(), []

    def place(features, prompt_ids):
        placed.append(len(prompt_ids))
        return {**features, "placed_on": len(prompt_ids)}

    engine = ServerEngine(client, place)
    img = str(tmp_path / "a.png")
    Image.new("RGB", (56, 56)).save(img)
    rows = [VLLMRow([1, 2, 3], [img], 10), VLLMRow([1, 2], [img], 20), VLLMRow([4], [img], 10)]
    spec = SamplingSpec(1.0, 1.0, 0, STOP_STRINGS, (99,))
    outs = engine.generate(rows, spec)
    assert len(client.features) == 1  # one image: processed once, then cached
    assert client.features[0][0][0].size == (56, 56)  # sent decoded
    assert placed == [3, 2, 1]
    assert sorted(g["max_tokens"] for g in client.generates) == [10, 20]
    g10 = next(g for g in client.generates if g["max_tokens"] == 10)
    assert g10["prompts"] == [[1, 2, 3], [4]] and [f["placed_on"] for f in g10["features"]] == [3, 1]
    assert g10["kwargs"] == {"stop": list(STOP_STRINGS), "include_stop_str_in_output": True,
                             "stop_token_ids": [99]}
    assert g10["logprobs"] == 0
    assert outs[0].token_ids == [7] and outs[0].logprobs == [-1.5]  # the sampled token, not rank 1
    assert outs[1].token_ids == [7] and outs[2].token_ids == [7, 8] and outs[2].logprobs == [-1.5, -0.3]


class ThreadGroup:
    """Two ranks as threads: all_gather and broadcast over a barrier."""

    def __init__(self, shared, rank):
        self.shared, self.rank = shared, rank

    def all_gather(self, obj):
        s = self.shared
        s["slots"][self.rank] = obj
        s["barrier"].wait()
        out = list(s["slots"])
        s["barrier"].wait()
        return out

    def broadcast(self, obj):
        s = self.shared
        if self.rank == 0:
            s["box"] = obj
        s["barrier"].wait()
        out = s["box"]
        s["barrier"].wait()
        return out


class CountingEngine:
    def __init__(self, fail=False):
        self.calls, self.fail = [], fail

    def generate(self, rows, spec):
        self.calls.append([r.prompt_ids[0] for r in rows])
        if self.fail:
            raise ValueError("boom")
        return [VLLMOut([r.prompt_ids[0] * 10], [-1.0]) for r in rows]


@pytest.mark.parametrize("everywhere", [False, True])
def test_lockstep_rounds_until_every_rank_is_done(everywhere):
    shared = {"slots": [None, None], "barrier": threading.Barrier(2, timeout=10), "box": None}
    engines = [CountingEngine(), CountingEngine() if everywhere else None]
    steps = [ThreadGroup(shared, r) for r in range(2)]
    locks = [Lockstep(steps[r], engines[r], everywhere=everywhere) for r in range(2)]
    spec = SamplingSpec(1.0, 1.0, 0, STOP_STRINGS, ())
    results: dict = {}

    def rank0():  # three generate calls, then done
        got = [locks[0].generate([VLLMRow([i], [], 4) for i in batch], spec)
               for batch in ([1, 2], [3], [4, 5, 6])]
        results[0] = (got, locks[0].finish())

    def rank1():  # one generate call, then it waits in empty rounds
        got = [locks[1].generate([VLLMRow([7], [], 4)], spec)]
        results[1] = (got, locks[1].finish())

    threads = [threading.Thread(target=f) for f in (rank0, rank1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    got0, extra0 = results[0]
    got1, extra1 = results[1]
    assert [[o.token_ids for o in g] for g in got0] == [[[10], [20]], [[30]], [[40], [50], [60]]]
    assert [[o.token_ids for o in g] for g in got1] == [[[70]]]
    assert extra0 == 0 and extra1 == 2  # rank 1 joined rank 0's last two rounds with no rows
    assert engines[0].calls == [[1, 2, 7], [3], [4, 5, 6]]
    if everywhere:
        assert engines[1].calls == engines[0].calls  # TP: every rank runs the same generate


def test_lockstep_failure_on_rank0_reaches_every_rank():
    shared = {"slots": [None, None], "barrier": threading.Barrier(2, timeout=10), "box": None}
    locks = [Lockstep(ThreadGroup(shared, 0), CountingEngine(fail=True), everywhere=False),
             Lockstep(ThreadGroup(shared, 1), None, everywhere=False)]
    spec = SamplingSpec(1.0, 1.0, 0, STOP_STRINGS, ())
    errors: dict = {}

    def go(r):
        try:
            locks[r].generate([VLLMRow([r + 1], [], 4)], spec)
        except RuntimeError as exc:
            errors[r] = str(exc)

    threads = [threading.Thread(target=go, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert set(errors) == {0, 1} and all("boom" in e for e in errors.values())


class FakeGeneration:
    def __init__(self):
        self.log = []
        self.mode, self.enable_sleep_mode, self._llm_weights_sleeping = "colocate", True, True
        self.llm = SimpleNamespace(wake_up=lambda tags: self.log.append(("wake", tuple(tags))),
                                   sleep=lambda level: self.log.append(("sleep", level)))

    def sync_weights(self):
        self.log.append(("sync",))
        self._llm_weights_sleeping = False


def test_sleep_mode_session_wakes_and_puts_the_engine_back(loaded):
    model, processor = loaded
    policy = VLLMRolloutPolicy.with_engine(model, processor, None)
    gen = policy.vllm_generation = FakeGeneration()
    with policy.session():
        gen.log.append(("rollout",))
    assert gen.log == [("sync",), ("wake", ("kv_cache",)), ("rollout",), ("sleep", 2)]
    assert gen._llm_weights_sleeping
    with pytest.raises(ValueError), policy.session():
        raise ValueError("a failed rollout still puts the engine to sleep")
    assert gen.log[-1] == ("sleep", 2)


def test_from_trainer_server_mode_and_missing_vllm(loaded):
    model, processor = loaded
    acc = SimpleNamespace(is_main_process=True, num_processes=1, unwrap_model=lambda m: m)
    gen = SimpleNamespace(mode="server", vllm_client=FakeClient(), _place_features=lambda f, ids: f,
                          enable_sleep_mode=False)
    trainer = SimpleNamespace(vllm_generation=gen, accelerator=acc, model=model)
    policy = VLLMRolloutPolicy.from_trainer(trainer, processor, temperature=1.0, top_p=1.0, seed=0)
    assert isinstance(policy.engine, ServerEngine) and policy.lockstep is None
    assert policy.vllm_generation is None
    gen.mode = "colocate"
    gen.llm, gen.tensor_parallel_size = FakeLLM(processor.tokenizer, {}), 1
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install"):
            VLLMRolloutPolicy.from_trainer(trainer, processor, temperature=1.0, top_p=1.0)
