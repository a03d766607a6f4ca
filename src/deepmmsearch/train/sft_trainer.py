"""The TRL side of the SFT stage: model start point, trainer construction, saving.

Kept apart from ``train/sft_config.py`` and ``train/sft.py`` so the config can be validated without
importing torch. See ``train/sft.py`` for how to run it (config: ``train/sft_config.py``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from deepmmsearch.registry import ConfigError, missing_dependency
from deepmmsearch.train.launch import (
    DTYPE_NAMES,
    freeze_vision,
    is_main_process,
    resolve_precision,
    use_cpu,
)
from deepmmsearch.train.sft_config import SFTRunConfig, grad_accumulation
from deepmmsearch.train.sft_data import (
    SFTExample,
    TrajectoryCollator,
    encode_examples,
    example_texts,
    read_examples,
)

log = logging.getLogger(__name__)

try:
    import torch
    from transformers import Trainer, TrainerCallback
    from trl import SFTConfig, SFTTrainer
except ImportError as exc:  # pragma: no cover - depends on the install
    raise missing_dependency("trl", "train", "the SFT stage") from exc


def _use_cpu(cfg: SFTRunConfig) -> bool:
    return use_cpu(cfg.device)


def _precision(cfg: SFTRunConfig) -> str:
    return resolve_precision(cfg.precision, cfg.device)


def load_start_model(cfg: SFTRunConfig, weights_from: str | None = None
                     ) -> tuple[Any, Any, list[SFTExample]]:
    """(model, processor, examples). ``tiny``: a tokenizer trained on the data + a random model,
    saved to ``out/init`` (the base of the adapter; reused when resuming). ``weights_from``: a
    full fine-tuning checkpoint whose weights replace the start model's."""
    from deepmmsearch.models.loading import load_model_and_processor, save_model_dir

    examples = read_examples(cfg.data, image_root=cfg.image_root, limit=cfg.max_examples)
    if not examples:
        raise ConfigError(f"sft: no examples in {cfg.data}")
    log.info("read %d SFT examples from %s", len(examples), cfg.data)
    token_texts = examples
    if cfg.augment is not None and cfg.augment.copies:
        from deepmmsearch.train.sft_augment import augment_examples

        examples = augment_examples(examples, cfg.augment)  # before the tokenizer is trained
        if cfg.augment.tokenizer_on_copies:
            token_texts = examples
        log.info("augment: %d examples, %d renamed copies of each", len(examples), cfg.augment.copies)
    if cfg.tiny is not None:
        init = Path(cfg.out) / "init"
        if cfg.resume and (init / "config.json").exists():
            model, processor = load_model_and_processor(init, device="cpu", dtype="float32")
        else:
            from deepmmsearch.models.tiny import build_tiny

            # deterministic: every rank builds the same model; only rank 0 writes it
            model, processor = build_tiny(example_texts(token_texts), cfg.tiny)
            if is_main_process():
                save_model_dir(model, processor, init)
    else:
        dtype = "float32" if cfg.method == "full" else DTYPE_NAMES[_precision(cfg)]
        model, processor = load_model_and_processor(
            cfg.model, device="cpu", dtype=dtype, min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels)
    if weights_from is not None:
        from transformers import AutoModelForImageTextToText

        model = AutoModelForImageTextToText.from_pretrained(weights_from, dtype=model.dtype)
    model.config.use_cache = False
    model.train()
    return model, processor, examples


def prepare_data(cfg: SFTRunConfig, processor: Any, examples: list[SFTExample]) -> tuple[list, list]:
    """Encoded train rows (and eval rows when ``eval_data`` is set)."""
    from deepmmsearch.models.processor import ImageEncoder

    images = ImageEncoder(processor.image_processor, cache_size=0)
    rows = encode_examples(examples, processor.tokenizer, images, max_length=cfg.max_length)
    if not rows:
        raise ConfigError(f"sft: none of the {len(examples)} examples could be used")
    eval_rows: list = []
    if cfg.eval_data:
        ev = read_examples(cfg.eval_data, image_root=cfg.image_root)
        eval_rows = encode_examples(ev, processor.tokenizer, images, max_length=cfg.max_length)
    n_tok = sum(len(r["input_ids"]) for r in rows)
    n_lab = sum(sum(x != -100 for x in r["labels"]) for r in rows)
    log.info("SFT data: %d rows, %d tokens, %d trained (%.0f%%)", len(rows), n_tok, n_lab,
             100.0 * n_lab / max(1, n_tok))
    return rows, eval_rows


def check_trainable(model: Any, cfg: SFTRunConfig) -> list[str]:
    """Trainable parameter names; raises when the vision tower (or a non-LoRA weight) would train."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if not names:
        raise RuntimeError("sft: no trainable parameters (check lora.target_modules)")
    if not cfg.train_vision and any("visual" in n for n in names):
        raise RuntimeError("sft: vision parameters are trainable: " + ", ".join(
            n for n in names if "visual" in n)[:500])
    if cfg.method == "lora" and any("lora_" not in n for n in names):
        raise RuntimeError("sft: LoRA run trains non-LoRA weights: " + ", ".join(
            n for n in names if "lora_" not in n)[:500])
    return names


def sft_args(cfg: SFTRunConfig, has_eval: bool) -> Any:
    prec = _precision(cfg)
    ckpt = cfg.gradient_checkpointing if cfg.gradient_checkpointing is not None else not _use_cpu(cfg)
    kwargs: dict[str, Any] = {
        "output_dir": str(Path(cfg.out) / "checkpoints"),
        "num_train_epochs": cfg.epochs, "max_steps": cfg.max_steps, "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": cfg.lr_scheduler, "warmup_steps": cfg.warmup_ratio,
        "weight_decay": cfg.weight_decay, "max_grad_norm": cfg.max_grad_norm,
        "per_device_train_batch_size": cfg.per_device_batch_size,
        "per_device_eval_batch_size": cfg.per_device_batch_size,
        "gradient_accumulation_steps": grad_accumulation(cfg),
        "bf16": prec == "bf16", "fp16": prec == "fp16", "use_cpu": _use_cpu(cfg),
        "gradient_checkpointing": ckpt, "logging_steps": cfg.logging_steps, "save_steps": cfg.save_steps,
        "save_total_limit": cfg.save_total_limit, "seed": cfg.seed, "report_to": cfg.report_to,
        "remove_unused_columns": False, "dataset_kwargs": {"skip_prepare_dataset": True},
        "dataloader_num_workers": cfg.dataloader_workers, "max_length": None,
        "eval_strategy": "steps" if has_eval else "no",
        "eval_steps": cfg.save_steps if has_eval else None,
        "ddp_find_unused_parameters": cfg.train_vision,
    }
    unknown = set(cfg.trl) - set(SFTConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"sft.trl: unknown SFTConfig fields {sorted(unknown)}")
    kwargs.update(cfg.trl)
    return SFTConfig(**kwargs)


class PlainLossSFTTrainer(SFTTrainer):
    """``SFTTrainer`` with transformers' standard loss over full logits instead of TRL's chunked
    fused LM-head kernel. The kernel saves memory for a 150k vocabulary; for a tiny model's few
    hundred tokens it is pure overhead (1.16× faster without it, docs/LOG.md). Same loss: the sum
    over the model's tokens divided by their number in the batch."""

    def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if not return_outputs and _has_plain_head(model):
            return labelled_positions_loss(model, inputs, num_items_in_batch)
        return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)


def _has_plain_head(model: Any) -> bool:
    inner = getattr(model, "module", model)  # DDP wraps the model
    return not hasattr(inner, "peft_config") and hasattr(inner, "lm_head") and hasattr(inner, "model")


def labelled_positions_loss(model: Any, inputs: dict, num_items_in_batch: Any = None) -> Any:
    """The causal-LM loss with the LM head applied only where a label is set (the model's own
    tokens, under half of a trajectory): the same value as transformers' loss over full logits,
    without computing logits that are masked anyway — for a tiny model from scratch the head and
    its softmax are a large share of the step (≈ 17 % faster at hidden 128, docs/LOG.md)."""
    inner = getattr(model, "module", model)
    labels = inputs["labels"]
    rest = {k: v for k, v in inputs.items() if k != "labels"}
    hidden = inner.model(**rest).last_hidden_state[:, :-1]
    target = labels[:, 1:].to(hidden.device)
    keep = target != -100
    logits = inner.lm_head(hidden[keep]).float()
    loss = torch.nn.functional.cross_entropy(logits, target[keep], reduction="sum")
    n = num_items_in_batch if num_items_in_batch is not None else keep.sum()
    return loss / (n.to(loss.device) if torch.is_tensor(n) else n)


def rope_index_fn(model: Any) -> Any:
    """The model's M-RoPE position function (what packing needs); an error when it has none."""
    fn = getattr(getattr(model, "model", None), "get_rope_index", None)
    if fn is None:
        raise ConfigError(f"sft.packing: {type(model).__name__} has no model.get_rope_index; "
                          "set packing: false")
    return fn


def use_fused_head(cfg: SFTRunConfig, model: Any) -> bool:
    if cfg.fused_lm_head is not None:
        return cfg.fused_lm_head
    return model.config.get_text_config().vocab_size > 65536


class SaveProcessor(TrainerCallback):
    """Writes the processor (and the adapter's base path) into every checkpoint, so a
    checkpoint loads into the ``hf`` policy on its own."""

    def __init__(self, processor: Any, base: str | None) -> None:
        self.processor, self.base = processor, base

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if ckpt.exists():
            _finish_dir(ckpt, self.processor, self.base)


def _finish_dir(path: Path, processor: Any, base: str | None) -> None:
    from deepmmsearch.models.processor import save_processor

    save_processor(processor, path)
    cfg_file = path / "adapter_config.json"
    if base and cfg_file.exists():
        data = json.loads(cfg_file.read_text(encoding="utf-8"))
        data["base_model_name_or_path"] = base
        cfg_file.write_text(json.dumps(data, indent=2), encoding="utf-8")


def base_path(cfg: SFTRunConfig) -> str:
    return str((Path(cfg.out) / "init").resolve()) if cfg.tiny is not None else str(cfg.model)


def build_trainer(cfg: SFTRunConfig, model: Any, processor: Any, rows: list, eval_rows: list) -> Any:
    """A TRL ``SFTTrainer`` with our collator (labels already masked) and LoRA / full FT."""
    from datasets import Dataset

    from deepmmsearch.models.processor import ImageEncoder

    peft_config = None
    if cfg.method == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                                 target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
    elif not cfg.train_vision:
        freeze_vision(model)
    collator = TrajectoryCollator(processor.tokenizer, ImageEncoder(processor.image_processor, 4096),
                                  rope_index=rope_index_fn(model) if cfg.packing else None)
    trainer_cls = SFTTrainer if use_fused_head(cfg, model) else PlainLossSFTTrainer
    trainer = trainer_cls(
        model=model, args=sft_args(cfg, bool(eval_rows)), data_collator=collator,
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=processor.tokenizer, peft_config=peft_config,
        callbacks=[SaveProcessor(processor, base_path(cfg) if cfg.method == "lora" else None)],
    )
    names = check_trainable(trainer.model, cfg)
    n = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    log.info("trainable: %d tensors, %d parameters (%s)", len(names), n, cfg.method)
    return trainer


def save_outputs(cfg: SFTRunConfig, trainer: Any, processor: Any) -> tuple[Path | None, Path | None]:
    """Save the adapter and/or the (merged) model; returns (model_dir, adapter_dir)."""
    from deepmmsearch.models.loading import load_model_and_processor, save_model_dir

    out = Path(cfg.out)
    main = trainer.accelerator.is_main_process
    if cfg.method == "full":
        model_dir = out / "model"
        trainer.save_model(str(model_dir))
        if main:
            _finish_dir(model_dir, processor, None)
        return model_dir, None
    adapter_dir = out / "adapter"
    trainer.save_model(str(adapter_dir))
    model_dir = None
    if main:
        _finish_dir(adapter_dir, processor, base_path(cfg))
    if main and cfg.save_merged:
        dtype = DTYPE_NAMES[_precision(cfg)]
        merged, proc = load_model_and_processor(adapter_dir, device="cpu", dtype=dtype)
        model_dir = save_model_dir(merged, proc, out / "model")
    trainer.accelerator.wait_for_everyone()
    if not cfg.save_adapter and main:
        import shutil

        shutil.rmtree(adapter_dir, ignore_errors=True)
        adapter_dir = None
    return model_dir, adapter_dir if cfg.save_adapter else None
