"""What every training stage shares at launch: rank, checkpoints, the frozen vision tower and the
one device / precision rule. No torch at import (only :func:`use_cpu` and
:func:`resolve_precision` with ``auto`` ask torch what the machine has).

>>> resolve_precision("bf16", "cpu")
'bf16'
>>> DTYPE_NAMES[resolve_precision("auto", "cpu")]
'float32'
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from deepmmsearch.registry import ConfigError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DTYPE_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def is_main_process() -> bool:
    """Rank 0 (or no launcher): the process that writes shared files."""
    return int(os.environ.get("RANK", "0")) == 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def use_cpu(device: str) -> bool:
    """``device: cpu``, or ``auto`` on a machine without CUDA."""
    if device == "cpu":
        return True
    if device != "auto":
        return False
    import torch

    return not torch.cuda.is_available()


def resolve_precision(precision: str, device: str) -> str:
    """``auto``: fp32 on the CPU, bf16 on a GPU that has it, else fp16; anything else as given."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    if use_cpu(device):
        return "fp32"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def last_checkpoint(folder: Path) -> str | None:
    """The ``checkpoint-N`` with the largest N in ``folder`` (None when there is none)."""
    cks = [p for p in Path(folder).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return str(max(cks, key=lambda p: int(p.name.split("-")[-1]))) if cks else None


def resume_path(resume: bool | str, out: str | Path, stage: str) -> str | None:
    """``resume: true`` → the latest checkpoint in ``out/checkpoints`` (None: start fresh);
    a path → that checkpoint, which must exist; false → None."""
    if resume is False:
        return None
    if resume is True:
        found = last_checkpoint(Path(out) / "checkpoints")
        if found is None:
            log.info("resume: no checkpoint in %s/checkpoints, starting fresh", out)
        return found
    if not Path(str(resume)).exists():
        raise ConfigError(f"{stage}.resume: checkpoint not found: {resume}")
    return str(resume)


def freeze_vision(model: Any) -> int:
    """Freeze every ``visual`` parameter (vision blocks and merger); returns how many tensors."""
    n = 0
    for name, p in model.named_parameters():
        if "visual" in name:
            p.requires_grad_(False)
            n += 1
    return n
