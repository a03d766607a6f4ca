"""runs/verl_multinode.sh: the paper's settings as veRL 0.9.1 Hydra overrides, composed on CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("verl.experimental.agent_loop",
                    reason="veRL is tested in its own environment: make test-verl")

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "runs" / "verl_multinode.sh"

VARIANTS = {"paper-30ep": (512, 128, 30), "paper-20ep": (256, 64, 20)}


def script(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "MODEL": "/models/sft-merged"}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO, check=False)


def check_paper_settings(cfg, variant: str, loop: str = "deepmmsearch_agent") -> None:
    from deepmmsearch.train.verl.template import chat_template_for

    a, alg, data, trainer = cfg["actor_rollout_ref"], cfg["algorithm"], cfg["data"], cfg["trainer"]
    actor, rollout = a["actor"], a["rollout"]
    assert (alg["adv_estimator"], alg["norm_adv_by_std_in_grpo"], alg["use_kl_in_reward"]) == (
        "grpo", False, False)
    assert (actor["use_kl_loss"], actor["kl_loss_coef"], actor["kl_loss_type"]) == (
        True, 0.001, "low_var_kl")
    assert actor["clip_ratio"] == 0.2 and actor["loss_agg_mode"] == "seq-mean-token-mean"
    assert (actor["optim"]["lr"], actor["optim"]["lr_warmup_steps"]) == (2e-6, 45)
    assert actor["freeze_vision_tower"] is True
    assert rollout["n"] == 8 and rollout["limit_images"] == 1
    assert (data["max_prompt_length"], data["max_response_length"]) == (4096, 8192)
    assert (data["train_batch_size"], actor["ppo_mini_batch_size"], trainer["total_epochs"]) == (
        VARIANTS[variant])
    assert (trainer["nnodes"], trainer["n_gpus_per_node"]) == (4, 8)
    mt = rollout["multi_turn"]
    assert (mt["enable"], mt["format"], mt["max_user_turns"], mt["max_assistant_turns"]) == (
        True, "deepmmsearch_tags", 10, 11)
    assert mt["max_tool_response_length"] == 4096
    assert Path(mt["tool_config_path"]) == REPO / "configs/verl/tools_paper.yaml"
    assert rollout["agent"]["default_agent_loop"] == loop
    assert Path(rollout["agent"]["agent_loop_config_path"]) == REPO / "configs/verl/agent_loops.yaml"
    assert a["model"]["custom_chat_template"] == chat_template_for(loop)
    assert a["model"]["path"] == "/models/sft-merged"
    assert data["custom_cls"] == {"path": "pkg://deepmmsearch.train.verl.dataset",
                                  "name": "DeepMMSearchRLDataset"}
    assert (data["return_raw_chat"], data["return_multi_modal_inputs"]) == (True, False)
    fn = cfg["reward"]["custom_reward_function"]
    assert (fn["path"], fn["name"]) == ("pkg://deepmmsearch.train.verl.reward", "compute_score")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_overrides_compose_with_verl_config(variant):
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    res = script("--variant", variant, "--print-overrides")
    assert res.returncode == 0, res.stderr
    overrides = res.stdout.splitlines()
    assert all("=" in o for o in overrides)
    with initialize_config_module("verl.trainer.config", version_base=None):
        cfg = compose("ppo_trainer", overrides=overrides)
    check_paper_settings(OmegaConf.to_container(cfg, resolve=False), variant)


def test_dry_run_prints_the_resolved_config():
    import yaml

    res = script("--variant", "paper-20ep", "--loop", "tool_agent", "--dry-run",
                 "trainer.save_freq=5")
    assert res.returncode == 0, res.stderr[-2000:]
    cfg = yaml.safe_load(res.stdout)
    check_paper_settings(cfg, "paper-20ep", loop="tool_agent")
    assert cfg["trainer"]["save_freq"] == 5  # extra overrides come last


def test_loops_are_registered_where_the_configs_point():
    from omegaconf import OmegaConf
    from verl.tools.tool_registry import load_all_tools

    loops = OmegaConf.load(REPO / "configs/verl/agent_loops.yaml")
    assert [entry.name for entry in loops] == ["deepmmsearch_agent"]
    for tools_yaml in ("tools.yaml", "tools_paper.yaml"):
        tools = load_all_tools(str(REPO / "configs/verl" / tools_yaml), None)
        assert [t.name for t in tools] == ["text_search", "img_search"]
        assert tools[0].runtime.agent.limits.max_tool_calls == 10  # the agent config loads


def test_bad_arguments_fail_loudly():
    res = script("--variant", "paper-10ep", "--print-overrides")
    assert res.returncode == 2 and "unknown variant" in res.stderr
    res = script("--loop", "other_agent", "--print-overrides")
    assert res.returncode == 2 and "unknown loop" in res.stderr
    res = script("--frobnicate")
    assert res.returncode == 2 and "unknown option" in res.stderr


def test_qwen3_vl_overrides_compose_and_keep_the_paper_recipe():
    """--with qwen3-vl-8b: veRL accepts every key, the paper's settings hold, the engine's change."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    res = script("--with", "qwen3-vl-8b", "--print-overrides")
    assert res.returncode == 0, res.stderr
    with initialize_config_module("verl.trainer.config", version_base=None):
        cfg = OmegaConf.to_container(compose("ppo_trainer", overrides=res.stdout.splitlines()),
                                     resolve=False)
    check_paper_settings(cfg, "paper-30ep")
    a = cfg["actor_rollout_ref"]
    assert a["rollout"]["gpu_memory_utilization"] == 0.55
    assert a["actor"]["ppo_max_token_len_per_gpu"] == 20480
    assert cfg["trainer"]["project_name"] == "deepmmsearch-qwen3-vl"
