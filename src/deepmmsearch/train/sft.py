"""The SFT stage's run: train, save and summarise (configuration: :mod:`.sft_config`).

::

    deepmmsearch sft -c configs/sft/tiny_cpu.yaml                          # CPU, minutes
    accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml \\
        -m deepmmsearch sft -c configs/sft/qwen2_5_vl_7b_lora.yaml         # several GPUs
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from deepmmsearch.train.launch import is_main_process, resume_path
from deepmmsearch.train.sft_config import LoraSpec, SFTResult, SFTRunConfig, grad_accumulation

# the config names, also importable from here (the stage's public face)
__all__ = ["LoraSpec", "SFTResult", "SFTRunConfig", "grad_accumulation", "is_main_process", "run_sft"]

log = logging.getLogger(__name__)


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
    ckpt = resume_path(cfg.resume, cfg.out, "sft")
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
