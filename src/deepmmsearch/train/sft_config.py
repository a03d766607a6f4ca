"""The SFT stage's configuration (validated without torch); the run is :mod:`.sft`.

The stage: TRL's ``SFTTrainer`` on distilled trajectories (paper §3.3; issue 6).

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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepmmsearch.models.tiny import TinySpec
from deepmmsearch.registry import ConfigError
from deepmmsearch.train.launch import PRECISIONS, world_size
from deepmmsearch.train.sft_augment import AugmentSpec
from deepmmsearch.train.vision_warmup import VisionWarmupSpec

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
    # renamed copies of every example: fresh names and numbers wherever its tools brought them
    # (train/sft_augment.py), so a model trained from scratch learns to copy, not to memorise
    augment: AugmentSpec | None = None
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
    # pack each batch's examples into fewer rows (block-diagonal attention; same examples per
    # step, fewer padded positions): Qwen-VL families whose model has `get_rope_index`
    packing: bool = False
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
        if self.precision not in PRECISIONS:
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


def grad_accumulation(cfg: SFTRunConfig, processes: int | None = None) -> int:
    """Gradient accumulation steps that give ``global_batch_size``; an error if it does not divide."""
    per_step = cfg.per_device_batch_size * (processes or world_size())
    if cfg.global_batch_size % per_step:
        raise ConfigError(f"sft.global_batch_size {cfg.global_batch_size} is not a multiple of "
                          f"per_device_batch_size × processes = {per_step}")
    return cfg.global_batch_size // per_step
