"""The GRPO stage's run (configuration: :mod:`.grpo_config`; the trainer: :mod:`.grpo_trainer`)."""

from __future__ import annotations

from typing import Any

from deepmmsearch.train.grpo_config import PAPER_TRL_DEFAULTS, GRPORunConfig, check_trl_fields

# the config names, also importable from here (the stage's public face)
__all__ = ["PAPER_TRL_DEFAULTS", "GRPORunConfig", "check_trl_fields", "run_grpo"]


def run_grpo(cfg: GRPORunConfig) -> Any:
    """Train, save and summarise one GRPO run (the body of ``deepmmsearch grpo``)."""
    from deepmmsearch.train.grpo_trainer import GRPORun

    return GRPORun(cfg).run()
