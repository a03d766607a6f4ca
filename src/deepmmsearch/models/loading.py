"""Save and load model directories: what the ``hf`` policy, SFT and GRPO read and write.

::

    model, processor = load_model_and_processor("Qwen/Qwen2.5-VL-7B-Instruct", device="cuda")
    model, processor = load_model_and_processor("runs/sft/model")      # a merged SFT model
    model, processor = load_model_and_processor("runs/sft/adapter")    # base + LoRA adapter
    save_model_dir(model, processor, "runs/tiny")

A directory with ``adapter_config.json`` and no ``config.json`` is a PEFT adapter: its base
model (``base_model_name_or_path``) is loaded and the adapter merged in. Loading never downloads
when ``HF_HUB_OFFLINE=1`` (the tests set it); a hub id then needs a local cache.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from deepmmsearch.registry import missing_dependency

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_device(device: str = "auto") -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    """``auto`` → bf16 on GPU, fp32 on CPU; else the named torch dtype."""
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def _require_transformers() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise missing_dependency("transformers", "train", "loading a model") from exc


def looks_like_path(name: str) -> bool:
    """A local path rather than a hub id (``org/name``): starts with ``.``, ``/`` or ``~``, or
    has more than one ``/``."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def is_adapter_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "adapter_config.json").exists() and not (p / "config.json").exists()


def _has_processor_files(path: Path) -> bool:
    return (path / "tokenizer_config.json").exists() and (path / "preprocessor_config.json").exists()


def load_model_and_processor(
    path_or_id: str | Path,
    *,
    device: str = "auto",
    dtype: str = "auto",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    revision: str | None = None,
    attn_implementation: str | None = None,
    merge_adapter: bool = True,
) -> tuple[Any, Any]:
    """Load a Qwen-VL model (eval mode) and its processor with our chat template; the
    processor class follows the model's ``model_type`` (conversation/families.py)."""
    _require_transformers()
    from transformers import AutoModelForImageTextToText

    from deepmmsearch.conversation.families import family_of
    from deepmmsearch.models.processor import load_processor

    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    src = Path(str(path_or_id)).expanduser()
    if not src.exists() and looks_like_path(str(path_or_id)):
        raise FileNotFoundError(f"model directory not found: {src}")
    if src.exists():
        path_or_id = str(src)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "revision": revision}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if is_adapter_dir(src):
        model, proc_src = _load_adapter(src, kwargs, merge_adapter)
    else:
        model = AutoModelForImageTextToText.from_pretrained(str(path_or_id), **kwargs)
        proc_src = str(path_or_id)
    processor = load_processor(proc_src, min_pixels=min_pixels, max_pixels=max_pixels,
                               revision=None if is_adapter_dir(src) else revision,
                               family=family_of(model))
    model.to(dev)
    model.eval()
    return model, processor


def _load_adapter(src: Path, kwargs: dict[str, Any], merge: bool) -> tuple[Any, str]:
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise missing_dependency("peft", "train", "loading a LoRA adapter") from exc
    from transformers import AutoModelForImageTextToText

    cfg = json.loads((src / "adapter_config.json").read_text(encoding="utf-8"))
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{src}/adapter_config.json does not name its base model")
    log.info("loading base model %s and the adapter in %s", base, src)
    model = AutoModelForImageTextToText.from_pretrained(base, **kwargs)
    model = PeftModel.from_pretrained(model, str(src))
    if merge:
        model = model.merge_and_unload()
    return model, str(src) if _has_processor_files(src) else base


def save_model_dir(model: Any, processor: Any, path: str | Path) -> Path:
    """Write model weights + config + generation config and the processor files to ``path``."""
    from deepmmsearch.models.processor import save_processor

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    save_processor(processor, out)
    return out


def count_parameters(model: Any, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
