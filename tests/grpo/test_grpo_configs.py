"""The shipped GRPO configs: the paper's batch arithmetic on 1 node × 8 GPUs, and TRL accepting
their settings (tests/runtime/test_rt_config.py checks that every config validates)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepmmsearch.config import load_config
from deepmmsearch.registry import ConfigError

ROOT = Path(__file__).parents[2]
GPUS = 8


@pytest.mark.parametrize("name,epochs,prompts,mini", [
    ("qwen2_5_vl_7b_lora_fvqa", 30, 512, 128),            # §4.1 (mini-batch: docs/DECISIONS.md)
    ("qwen2_5_vl_7b_lora_fvqa_appendix", 20, 256, 64),    # App. D
])
def test_paper_batch_arithmetic(name, epochs, prompts, mini):
    cfg = load_config(ROOT / "configs" / "grpo" / f"{name}.yaml", expect="grpo")
    t = cfg.trl_settings()
    g = t["num_generations"]
    assert g == 8 and t["num_train_epochs"] == epochs
    per_step = t["per_device_train_batch_size"] * GPUS
    assert per_step * t["steps_per_generation"] == prompts * g  # one rollout batch
    assert per_step * t["gradient_accumulation_steps"] == mini * g  # one optimizer step
    updates = t["steps_per_generation"] // t["gradient_accumulation_steps"]
    assert updates == prompts // mini == 4
    assert t["warmup_steps"] == 45 * updates  # 45 veRL steps (one per rollout batch)
    assert (t["beta"], t["epsilon"], t["learning_rate"], t["loss_type"], t["scale_rewards"]) == (
        0.001, 0.2, 2e-6, "grpo", "none")
    assert t["use_vllm"] and t["vllm_mode"] == "colocate" and t["vllm_tensor_parallel_size"] == 1
    assert cfg.dataset.name == "fvqa" and cfg.judge.name == "llm" and cfg.judge.options["mode"] == "reward"
    assert cfg.agent.image_search.name == "serpapi-lens" and cfg.agent.grounder.name == "grounding-dino"
    assert cfg.agent.limits.max_tool_calls == 10 and cfg.agent.limits.max_image_searches == 1
    assert cfg.temperature == t["temperature"] == 1.0


def test_trl_accepts_the_settings(tmp_path):
    """GRPOConfig builds from each config (one CPU process: TRL's own divisibility checks)."""
    from deepmmsearch.train.grpo_trainer import GRPORun

    for path in sorted((ROOT / "configs" / "grpo").glob("*.yaml")):
        cfg = load_config(path, ["device=cpu", "precision=fp32", f"out={tmp_path / path.stem}"],
                          expect="grpo")
        args = GRPORun(cfg).grpo_args()
        assert args.num_generations == 8 and args.temperature == cfg.temperature
        assert args.generation_batch_size % args.num_generations == 0


def test_trl_typos_and_rollout_settings_are_config_errors():
    base = ROOT / "configs" / "grpo" / "tiny_cpu.yaml"
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        load_config(base, ["trl.learning_rat=0.1"], expect="grpo")
    with pytest.raises(ConfigError, match="top level"):
        load_config(base, ["trl.temperature=0.3"], expect="grpo")
    with pytest.raises(ConfigError, match="temperature > 0"):
        load_config(base, ["temperature=0"], expect="grpo")
