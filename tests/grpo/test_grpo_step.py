"""One GRPO step on the tiny Qwen2.5-VL with multi-turn tool rollouts (TRL 1.16 rollout_func).

Checks, token by token, that the loss mask TRL uses is our env_mask (model tokens 1, injected
<information> tokens 0), that TRL's advantages are the paper's (reward minus group mean), and
that an independent GRPO computation (grpo_math) gives TRL's loss on fixed tensors.
"""

from __future__ import annotations

import pytest
import torch

from deepmmsearch.train import grpo_math

pytestmark = pytest.mark.slow


def _scripted(policy, scripts):
    """Odd-numbered rollouts answer wrongly, so every group has different rewards."""
    from deepmmsearch.policies.scripted import ScriptedPolicy

    scripted = ScriptedPolicy(scripts=scripts)

    async def generate(request):
        index = int(request.episode_id.split("-")[1])
        request.episode_id = request.metadata["id"]
        gen = await scripted.generate(request)
        if index % 2 and "<answer>" in gen.text:
            gen.text = gen.text.replace("km/h", "mph").replace("<answer>", "<answer>9")
        return gen

    policy.generate = generate
    return policy


@pytest.fixture(scope="module")
def stepped(world, tiny_model_dir, tmp_path_factory):
    from deepmmsearch.train.grpo_trainer import GRPORun

    from .conftest import grpo_config

    cfg = grpo_config(world, tiny_model_dir, tmp_path_factory.mktemp("grpo_out"))
    run = GRPORun(cfg)
    captured: dict = {}
    make_policy = run.make_policy

    def patched(model, processor):  # model turns from a script; tokens, masks, tools are real
        return _scripted(make_policy(model, processor), world["scripts"])

    run.make_policy = patched
    orig_rollout = run.rollout

    def rollout(prompts, trainer):
        out = orig_rollout(prompts, trainer)
        captured["rollout"] = out
        captured["trajs"] = run._last_trajs
        return out

    run.rollout = rollout
    import trl

    orig_init = trl.GRPOTrainer.__init__

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        orig_score = self._generate_and_score_completions

        def score(inputs):
            res = orig_score(inputs)
            captured["scored"] = res
            return res

        self._generate_and_score_completions = score

    trl.GRPOTrainer.__init__ = init
    try:
        before = {n: p.detach().clone() for n, p in _named(tiny_model_dir)}
        summary = run.run()
    finally:
        trl.GRPOTrainer.__init__ = orig_init
    return run, captured, summary, before


def _named(model_dir):
    from transformers import AutoModelForImageTextToText

    return list(AutoModelForImageTextToText.from_pretrained(str(model_dir)).named_parameters())


def test_rollouts_are_multi_turn_with_real_tools(stepped):
    _, captured, summary, _ = stepped
    trajs = captured["trajs"]
    assert len(trajs) == 4 and summary["steps"] == 1
    for t in trajs:
        assert [tc.kind for tc in t.tool_calls] == ["image_search", "text_search"]
        assert all(tc.hits and not tc.error for tc in t.tool_calls)
        assert t.stop_reason == "answer"


def test_env_mask_covers_exactly_the_model_tokens(stepped):
    run, captured, _, _ = stepped
    tok = run.processor.tokenizer
    out = captured["rollout"]
    for t, ids, mask in zip(captured["trajs"], out["completion_ids"], out["env_mask"]):
        model_text = tok.decode([i for i, m in zip(ids, mask) if m], skip_special_tokens=False)
        injected = tok.decode([i for i, m in zip(ids, mask) if not m], skip_special_tokens=False)
        assert model_text == "".join(turn.model_text for turn in t.turns)
        assert injected == "".join(turn.observation or "" for turn in t.turns)
        assert "<information>" in injected and "<information>" not in model_text


def test_trl_optimises_with_our_mask_and_paper_advantages(stepped):
    run, captured, _, _ = stepped
    scored = captured["scored"]
    tool_mask = scored["tool_mask"]
    for row, mask in enumerate(captured["rollout"]["env_mask"]):
        assert tool_mask[row, : len(mask)].tolist() == mask
    # rewards are 0.9·correct + 0.1·format: 1.0 for even rollouts, 0.1 for odd (wrong answer)
    n = len(captured["rollout"]["env_mask"])
    rewards = torch.tensor([0.1 if i % 2 else 1.0 for i in range(n)])
    expected = grpo_math.group_advantages(rewards, 4, scale="none")
    assert torch.allclose(scored["advantages"], expected, atol=1e-6)
    assert abs(run.history[-1]["reward"] - float(rewards.mean())) < 1e-6


def test_vision_frozen_and_language_model_trained(stepped):
    from transformers import AutoModelForImageTextToText

    _, _, summary, before = stepped
    after = dict(AutoModelForImageTextToText.from_pretrained(summary["model_dir"]).named_parameters())
    changed = [n for n, p in before.items() if not torch.equal(p, after[n])]
    assert changed and not any("visual" in n for n in changed), changed
    assert any("language_model" in n for n in changed)


def test_metrics_log_has_components(stepped):
    run, _, _, _ = stepped
    row = run.history[-1]
    for key in ("reward", "rewards/correctness/mean", "rewards/format/mean", "rollout/accuracy",
                "rollout/format_rate", "rollout/image_searches", "rollout/text_searches",
                "rollout/turns", "time/generation_s", "time/tools_s", "time/judge_s",
                "time/optimisation_s", "time/step_s", "kl", "entropy"):
        assert key in row, key
    assert (run.out / "metrics.jsonl").exists() and (run.out / "rollouts.jsonl").exists()
    # the time split: tools really ran (scripted turns: no generate call), the parts add up
    assert row["time/tools_s"] > 0 and row["time/generation_s"] == 0
    parts = row["time/generation_s"] + row["time/tools_exposed_s"] + row["time/rollout_other_s"]
    assert abs(parts - row["time/rollout_s"]) < 1e-6
    assert row["time/optimisation_s"] > 0
    total = row["time/rollout_s"] + row["time/judge_s"] + row["time/optimisation_s"]
    assert abs(total - row["time/step_s"]) < 1e-6


def test_reference_grpo_objective_matches_trl():
    """TRL's _compute_loss on fixed tensors equals grpo_math.grpo_loss."""
    from trl import GRPOTrainer

    torch.manual_seed(0)
    B, T, G = 4, 6, 2
    logps = torch.randn(B, T) * 0.3 - 1.0
    old = logps + torch.randn(B, T) * 0.3  # ratios outside [0.8, 1.2] occur: the clip binds
    ref = logps + torch.randn(B, T) * 0.2
    rewards = torch.tensor([1.0, 0.1, 0.9, 0.9])
    adv = grpo_math.group_advantages(rewards, G, scale="none")
    assert torch.allclose(adv, torch.tensor([0.45, -0.45, 0.0, 0.0]))
    mask = torch.tensor([[1, 1, 0, 0, 1, 1]] * 2 + [[1, 0, 1, 1, 1, 0]] * 2)
    expected, stats = grpo_math.grpo_loss(logps, old, ref, adv, mask, epsilon=0.2, beta=0.001)
    assert stats["clip_fraction"] > 0

    class Fake:  # just the attributes _compute_loss reads
        beta, epsilon_low, epsilon_high, loss_type = 0.001, 0.2, 0.2, "grpo"
        importance_sampling_level, top_entropy_quantile = "token", 1.0
        off_policy_mask_threshold, use_vllm, aux_loss_enabled = None, False, False
        _entropy_bonus_enabled, current_gradient_accumulation_steps = False, 1
        _metrics = {"train": __import__("collections").defaultdict(list)}  # noqa: RUF012

        class args:
            delta = None
            use_bias_correction_kl = False

        class model:
            training = True

        class accelerator:
            num_processes = 1

            sync_gradients = True

            @staticmethod
            def gather(x):
                return x

            @staticmethod
            def gather_for_metrics(x):
                return x

            @staticmethod
            def reduce(x, reduction="sum"):
                return x

        def _get_per_token_logps_and_entropies(self, *a, **k):
            return logps, torch.zeros_like(logps), None

    inputs = {
        "prompt_ids": torch.zeros(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2),
        "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": torch.ones(B, T),
        "tool_mask": mask, "advantages": adv, "old_per_token_logps": old,
        "ref_per_token_logps": ref,
    }
    got = GRPOTrainer._compute_loss(Fake(), None, inputs)
    assert torch.allclose(got, expected, atol=1e-6), (got, expected)
