"""The GRPO stage's configuration (validated without torch); the run is :mod:`.grpo`.

The GRPO stage on one node: TRL's ``GRPOTrainer`` with multi-turn tool rollouts (paper §3.2).

::

    deepmmsearch grpo -c configs/grpo/tiny_cpu.yaml                        # CPU, minutes
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml \\
        -m deepmmsearch grpo -c configs/grpo/qwen2_5_vl_7b_lora_fvqa.yaml    # the paper, 8 GPUs

Each of the ``num_generations`` completions of a prompt is a whole multi-turn episode driven by
the episode engine (:mod:`deepmmsearch.agent.state`) with real tool calls (the ``agent`` section
names the tools, budgets and prompts; its ``policy`` is ignored: the model being trained is the
policy; with ``trl.use_vllm`` TRL's vLLM engine generates, :mod:`deepmmsearch.train.grpo_vllm`).
The rollout returns the sampled ids with their log-probabilities; the injected
``<information>`` text is tokenised separately and carries ``env_mask`` 0, so it never enters the
loss (:mod:`deepmmsearch.conversation.encoding`, the same encoder SFT uses).

Reward (paper §3.2): ``R = (1 − λ)·s + λ·s_fmt`` — two TRL reward functions, correctness from the
configured judge and :func:`~deepmmsearch.protocol.format_score`, weighted ``[1 − λ, λ]``. The
advantage follows the paper (reward minus the group mean; ``scale_rewards: none``), ``loss_type``
is set explicitly to ``grpo``. With LoRA the KL reference is the base model with the adapter off.

Outputs in ``out``: ``metrics.jsonl`` (one row per step: reward and components, accuracy, format
rate, tool calls per type, turns, response length, KL, entropy, timings), ``rollouts.jsonl``
(trajectories with rewards), ``reward.png``, ``checkpoints/``, ``model/`` (merged; what the
``hf`` policy loads), ``adapter/`` (LoRA).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deepmmsearch.config import AgentConfig
from deepmmsearch.registry import ComponentSpec, ConfigError
from deepmmsearch.train.launch import PRECISIONS
from deepmmsearch.train.sft_config import LoraSpec

# The paper's settings (App. D), mapped to GRPOConfig fields; `trl:` in the config overrides them.
PAPER_TRL_DEFAULTS: dict[str, Any] = {
    "num_generations": 8,
    "beta": 0.001,
    "epsilon": 0.2,
    "loss_type": "grpo",
    "scale_rewards": "none",  # advantage = reward − group mean (paper §3.2), no std division
    "learning_rate": 2e-6,
    "warmup_steps": 45,
    "lr_scheduler_type": "constant_with_warmup",
    "max_completion_length": 8192,
    "mask_truncated_completions": False,
    "vllm_importance_sampling_correction": False,
    "num_iterations": 1,
}


@dataclass(frozen=True, kw_only=True)
class GRPORunConfig:
    """One GRPO run; see the module docstring."""

    stage: str = "grpo"
    model: str  # the SFT output (model/ or adapter/ dir) or a hub id
    dataset: ComponentSpec  # a registry.DATASET spec, e.g. {name: fvqa, path: ...} or {name: simweb, ...}
    agent: AgentConfig = field(default_factory=AgentConfig)  # tools, budgets, prompts
    judge: ComponentSpec = field(default_factory=lambda: ComponentSpec("rule"))
    format_weight: float = 0.1  # λ in R = (1 − λ)·s + λ·s_fmt
    method: str = "lora"  # lora | full (full: vision stays frozen)
    lora: LoraSpec = field(default_factory=LoraSpec)
    continue_lora: bool = False  # the model is a LoRA adapter dir: train that adapter further
    temperature: float = 1.0
    top_p: float = 1.0
    max_samples: int | None = None
    out: str = "runs/grpo"
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto (fp32 on CPU, bf16 on GPU, fp16 without bf16) | bf16 | fp16 | fp32
    torch_threads: int | None = None
    save_merged: bool = True
    rollout_log_every: int = 1  # write the trajectories of every N-th step to rollouts.jsonl
    report_to: str = "none"  # none | tensorboard | wandb (when installed)
    trl: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in ("lora", "full"):
            raise ConfigError(f"grpo.method must be 'lora' or 'full', got {self.method!r}")
        if not 0.0 <= self.format_weight <= 1.0:
            raise ConfigError("grpo.format_weight must be in [0, 1]")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ConfigError("grpo: rollouts are sampled: need temperature > 0 and 0 < top_p <= 1")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"grpo.precision must be one of {', '.join(PRECISIONS)}, "
                              f"got {self.precision!r}")
        from deepmmsearch.registry import DATASET, JUDGE

        DATASET.validate(self.dataset)
        JUDGE.validate(self.judge)
        bad = set(self.trl) & {"output_dir", "seed", "report_to", "temperature", "top_p"}
        if bad:
            raise ConfigError(f"grpo.trl: set {sorted(bad)} at the top level "
                              "(out, seed, report_to, temperature, top_p)")
        check_trl_fields(self.trl)

    def trl_settings(self) -> dict[str, Any]:
        # TRL divides the logits by its temperature when it computes the log-probs of the loss:
        # it must be the temperature the rollouts were sampled at
        return {**PAPER_TRL_DEFAULTS, **self.trl, "temperature": self.temperature, "top_p": self.top_p}


def check_trl_fields(trl: dict[str, Any]) -> None:
    """Every ``trl:`` key must be a ``GRPOConfig`` field (checked when trl is installed)."""
    import dataclasses
    import importlib.util

    if not trl or importlib.util.find_spec("trl") is None:
        return
    from trl.trainer.grpo_config import GRPOConfig

    from deepmmsearch.registry import did_you_mean

    names = {f.name for f in dataclasses.fields(GRPOConfig)}
    for key in trl:
        if key not in names:
            raise ConfigError(f"grpo.trl: unknown GRPOConfig field {key!r}{did_you_mean(key, names)}")
