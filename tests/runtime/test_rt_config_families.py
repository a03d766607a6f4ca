"""The Qwen3-VL configs: the paper's recipe with another base model, and nothing else changed.

The family itself is never written in a config: the checkpoint's ``model_type`` picks it
(conversation/families.py). What these configs may change against the Qwen2.5-VL ones is the
model, the output folder and the pixel bound (the same 1280 image tokens per image at 32 px per
token side instead of 28); the veRL overrides only add engine settings after the paper's files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from deepmmsearch.config import load_config
from deepmmsearch.conversation.families import family_for

ROOT = Path(__file__).resolve().parents[2]


def _load(path: str, stage: str):
    return load_config(ROOT / path, expect=stage)


def test_sft_config_is_the_paper_recipe_on_qwen3_vl():
    old, new = _load("configs/sft/qwen2_5_vl_7b_lora.yaml", "sft"), _load("configs/sft/qwen3_vl_8b_lora.yaml", "sft")
    assert new.model == "Qwen/Qwen3-VL-8B-Instruct" and new.out == "runs/sft/qwen3_vl_8b_lora"
    q25, q3 = family_for("qwen2_5_vl"), family_for("qwen3_vl")
    assert old.max_pixels // q25.image_factor ** 2 == new.max_pixels // q3.image_factor ** 2 == 1280
    assert new.max_pixels % q3.image_factor ** 2 == 0
    changed = {k for k, v in asdict(new).items() if asdict(old)[k] != v}
    assert changed == {"model", "out", "max_pixels"}


def test_grpo_config_starts_from_the_qwen3_vl_sft_output():
    old = _load("configs/grpo/qwen2_5_vl_7b_lora_fvqa.yaml", "grpo")
    new = _load("configs/grpo/qwen3_vl_8b_lora_fvqa.yaml", "grpo")
    sft = _load("configs/sft/qwen3_vl_8b_lora.yaml", "sft")
    assert new.model == f"{sft.out}/model" and new.out == "runs/grpo/qwen3_vl_8b_lora_fvqa"
    changed = {k for k, v in asdict(new).items() if asdict(old)[k] != v}
    assert changed == {"model", "out"}
    assert new.trl_settings() == old.trl_settings()


def test_eval_config_has_a_prompted_and_a_trained_qwen3_vl_agent():
    cfg = _load("configs/eval/paper_table1.yaml", "eval")
    rows = {w.name: w for w in cfg.workflows}
    prompted, trained = rows["qwen3-vl-prompt-agent"], rows["qwen3-vl-rl"]
    assert prompted.kind == trained.kind == "agent"
    assert (prompted.policy.name, prompted.policy.options["model"]) == ("openai", "Qwen/Qwen3-VL-8B-Instruct")
    grpo = _load("configs/grpo/qwen3_vl_8b_lora_fvqa.yaml", "grpo")
    assert (trained.policy.name, trained.policy.options["model"]) == ("hf", f"{grpo.out}/model")
    assert rows["rl"].policy.options["model"] != trained.policy.options["model"]


def _overrides(*args: str) -> list[str]:
    env = {**os.environ, "PYTHON": sys.executable, "MODEL": "/models/qwen3-vl-sft",
           "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run(["bash", str(ROOT / "runs/verl_multinode.sh"), *args, "--print-overrides"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_verl_qwen3_vl_overrides_come_after_the_paper_and_keep_it():
    paper, qwen3 = _overrides(), _overrides("--with", "qwen3-vl-8b")
    lines = [ln.strip() for ln in (ROOT / "configs/verl/qwen3-vl-8b.overrides").read_text().splitlines()]
    own = [ln for ln in lines if ln and not ln.startswith("#")]
    assert own and all("=" in ln for ln in own)
    assert qwen3[: len(paper) - 12] == paper[: len(paper) - 12]  # the paper's files first
    assert qwen3[len(paper) - 12: len(paper) - 12 + len(own)] == own  # then ours, then the paths
    final = dict(ln.split("=", 1) for ln in qwen3)  # Hydra: the last value of a key wins
    assert final["actor_rollout_ref.model.path"] == "/models/qwen3-vl-sft"
    assert (final["trainer.nnodes"], final["trainer.n_gpus_per_node"]) == ("4", "8")
    recipe = ("algorithm.", "actor_rollout_ref.actor.optim", "actor_rollout_ref.actor.clip_ratio",
              "actor_rollout_ref.actor.kl", "actor_rollout_ref.rollout.n", "data.max_",
              "actor_rollout_ref.rollout.multi_turn", "reward.")
    assert not [ln for ln in own if ln.startswith(recipe)]  # the paper's recipe is not touched
    bad = subprocess.run(["bash", str(ROOT / "runs/verl_multinode.sh"), "--with", "nope",
                          "--print-overrides"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert bad.returncode == 2 and "nope.overrides" in bad.stderr
