"""The SFT stage: TRL's ``SFTTrainer`` on distilled trajectories (paper §3.3; issue 6).

::

    deepmmsearch sft -c configs/sft/tiny_cpu.yaml                          # CPU, minutes
    deepmmsearch sft -c configs/sft/qwen2_5_vl_7b_lora.yaml data=runs/distill/sft.jsonl
    accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml \\
        -m deepmmsearch sft -c configs/sft/qwen2_5_vl_7b_lora.yaml         # several GPUs

- LoRA (r, alpha, dropout, target modules in ``lora``) on the language model only: the default
  target regex matches q/k/v/o/gate/up/down projections under ``language_model``; the vision
  tower and its merger stay frozen (checked: no trainable parameter name contains ``visual``).
  ``method: full`` trains every language-model weight (tiny models from scratch; the vision tower
  stays frozen unless ``train_vision``). ``tiny:`` builds a random tiny Qwen2.5-VL whose tokenizer
  is trained on the data, instead of loading ``model``.
- The loss covers only the model's tokens; the prompt and every injected ``<information>`` span are
  masked, through the chat template and the encoder the rollouts use (``conversation/encoding.py``).
- Output in ``out``: ``checkpoints/`` (resumable; ``resume: true`` picks the latest),
  ``adapter/`` (LoRA + processor), ``model/`` (merged model + processor — what the ``hf`` policy
  loads), ``train_log.jsonl``, ``loss.png``, ``summary.json``, ``config.yaml``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepmmsearch.models.tiny import TinySpec
from deepmmsearch.registry import ConfigError
from deepmmsearch.train.vision_warmup import VisionWarmupSpec

log = logging.getLogger(__name__)

# q/k/v/o and MLP projections of the language model only (never `visual.*`, never lm_head)
LANGUAGE_MODEL_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass(frozen=True, kw_only=True)
class LoraSpec:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: str = LANGUAGE_MODEL_TARGETS  # a regex over module names


@dataclass(frozen=True, kw_only=True)
class SFTRunConfig:
    """One SFT run; see the module docstring. ``trl`` passes extra fields to ``SFTConfig``."""

    stage: str = "sft"
    data: str  # JSONL of trajectories (data/export.py sft.jsonl) or chat rows
    eval_data: str | None = None
    image_root: str | None = None
    max_examples: int | None = None
    model: str | None = None  # hub id or directory
    tiny: TinySpec | None = None  # instead of `model`: a tiny random Qwen2.5-VL from scratch
    out: str = "runs/sft"
    method: str = "lora"  # lora | full
    lora: LoraSpec = field(default_factory=LoraSpec)
    train_vision: bool = False  # full fine-tuning only
    # tiny models only: pretrain the random vision tower on SimWeb's scenes first (then frozen)
    vision_warmup: VisionWarmupSpec | None = None
    epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: float = 1e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    per_device_batch_size: int = 1
    global_batch_size: int = 8  # per_device × gradient accumulation × processes
    precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | bf16 | fp16 | fp32
    gradient_checkpointing: bool | None = None  # None: on GPU yes, on CPU no
    max_length: int | None = None  # longer examples lose their end (never the prompt)
    min_pixels: int | None = None
    max_pixels: int | None = None
    device: str = "auto"  # auto | cpu | cuda
    torch_threads: int | None = None
    seed: int = 0
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int | None = 2
    resume: bool | str = False  # true: latest checkpoint in out/checkpoints; or a checkpoint path
    save_adapter: bool = True
    save_merged: bool = True
    fused_lm_head: bool | None = None  # TRL's chunked LM-head loss; None: only for vocab > 65536
    dataloader_workers: int = 0
    report_to: str = "none"
    trl: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in ("lora", "full"):
            raise ConfigError(f"sft.method must be 'lora' or 'full', got {self.method!r}")
        if (self.model is None) == (self.tiny is None):
            raise ConfigError("sft: give exactly one of 'model' (hub id or directory) and 'tiny'")
        if self.precision not in ("auto", "bf16", "fp16", "fp32"):
            raise ConfigError(f"sft.precision must be auto, bf16, fp16 or fp32, got {self.precision!r}")
        if self.train_vision and self.method != "full":
            raise ConfigError("sft.train_vision needs method: full (LoRA targets the language model)")
        if self.vision_warmup is not None and self.tiny is None:
            raise ConfigError("sft.vision_warmup is for a tiny model built from scratch (tiny:); a "
                              "pretrained checkpoint's vision encoder is already trained")
        if self.per_device_batch_size < 1 or self.global_batch_size < self.per_device_batch_size:
            raise ConfigError("sft: need 1 <= per_device_batch_size <= global_batch_size")


@dataclass
class SFTResult:
    out: Path
    model_dir: Path | None
    adapter_dir: Path | None
    steps: int
    train_loss: float | None
    log_history: list[dict[str, Any]]
    summary: dict[str, Any]


def is_main_process() -> bool:
    """Rank 0 (or no launcher): the process that writes shared files."""
    return int(os.environ.get("RANK", "0")) == 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def grad_accumulation(cfg: SFTRunConfig, processes: int | None = None) -> int:
    """Gradient accumulation steps that give ``global_batch_size``; an error if it does not divide."""
    per_step = cfg.per_device_batch_size * (processes or world_size())
    if cfg.global_batch_size % per_step:
        raise ConfigError(f"sft.global_batch_size {cfg.global_batch_size} is not a multiple of "
                          f"per_device_batch_size × processes = {per_step}")
    return cfg.global_batch_size // per_step


def last_checkpoint(folder: Path) -> str | None:
    cks = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return str(max(cks, key=lambda p: int(p.name.split("-")[-1]))) if cks else None


def resume_path(cfg: SFTRunConfig) -> str | None:
    if cfg.resume is False:
        return None
    if cfg.resume is True:
        found = last_checkpoint(Path(cfg.out) / "checkpoints")
        if found is None:
            log.info("resume: no checkpoint in %s/checkpoints, starting fresh", cfg.out)
        return found
    if not Path(str(cfg.resume)).exists():
        raise ConfigError(f"sft.resume: checkpoint not found: {cfg.resume}")
    return str(cfg.resume)


def run_sft(cfg: SFTRunConfig) -> SFTResult:
    """Train, save and summarise one SFT run (the body of ``deepmmsearch sft``)."""
    from deepmmsearch.train.sft_trainer import (
        build_trainer,
        load_start_model,
        prepare_data,
        save_outputs,
    )

    t0 = time.perf_counter()
    if cfg.torch_threads:
        import torch

        torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    from deepmmsearch.config import dump_config

    if is_main_process():
        dump_config(cfg, out / "config.yaml")
    ckpt = resume_path(cfg)
    if ckpt:
        log.info("resuming from %s", ckpt)
    # Full fine-tuning: the checkpoint's weights are loaded here with from_pretrained, because
    # transformers' Trainer reloads them with a non-strict load_state_dict that does not map
    # Qwen2.5-VL's saved key layout (visual.*, model.layers.*) and silently loads nothing.
    model, processor, examples = load_start_model(cfg, weights_from=ckpt if cfg.method == "full" else None)
    warmup = None
    if cfg.vision_warmup is not None and not ckpt:
        from deepmmsearch.train.vision_warmup import warm_up_vision

        warmup = warm_up_vision(model, processor, cfg.vision_warmup)
    train_rows, eval_rows = prepare_data(cfg, processor, examples)
    trainer = build_trainer(cfg, model, processor, train_rows, eval_rows)
    result = trainer.train(resume_from_checkpoint=ckpt)
    model_dir, adapter_dir = save_outputs(cfg, trainer, processor)
    history = list(trainer.state.log_history)
    summary = {
        "steps": trainer.state.global_step, "train_loss": result.training_loss,
        "examples": len(train_rows), "wall_s": round(time.perf_counter() - t0, 2),
        "vision_warmup": warmup,
        "train_runtime_s": result.metrics.get("train_runtime"),
        "samples_per_s": result.metrics.get("train_samples_per_second"),
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "model_dir": str(model_dir) if model_dir else None,
        "adapter_dir": str(adapter_dir) if adapter_dir else None,
    }
    if is_main_process():
        _write_logs(out, history, summary)
    log.info("SFT done: %d steps, train loss %.4f, %s", summary["steps"], result.training_loss,
             model_dir or adapter_dir)
    return SFTResult(out, model_dir, adapter_dir, trainer.state.global_step, result.training_loss,
                     history, summary)


def _write_logs(out: Path, history: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    with open(out / "train_log.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in history)
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    points = [(r["step"], r["loss"]) for r in history if "loss" in r and "step" in r]
    if len(points) < 2:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib missing: no loss plot (pip install 'deepmmsearch[plot]')")
        return
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(*zip(*points))
    ax.set_xlabel("step")
    ax.set_ylabel("train loss (model tokens)")
    ax.set_title("SFT")
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=100)
    plt.close(fig)
