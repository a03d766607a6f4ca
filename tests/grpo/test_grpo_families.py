"""One TRL GRPO step with multi-turn tool rollouts on tiny Qwen3-VL and Qwen3.5 models: the
checks of test_grpo_step.py (real tool calls, env_mask == model tokens, TRL's mask and the
paper's advantages, vision frozen, metrics), run again with this module's ``tiny_model_dir``."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import DIRECT, ENTITIES
from .test_grpo_step import (  # noqa: F401 - the fixture and the checks, collected here again
    stepped,
    test_env_mask_covers_exactly_the_model_tokens,
    test_metrics_log_has_components,
    test_rollouts_are_multi_turn_with_real_tools,
    test_trl_optimises_with_our_mask_and_paper_advantages,
    test_vision_frozen_and_language_model_trained,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["qwen3_vl", "qwen3_5"])
def tiny_model_dir(request, world, tmp_path_factory) -> Path:
    from deepmmsearch.models.loading import save_model_dir
    from deepmmsearch.models.tiny import TinySpec, build_tiny, default_texts

    texts = default_texts() + [t for s in world["scripts"].values() for t in s] + DIRECT
    texts += [f"{n} runs at {s} km/h." for n, s in ENTITIES]
    model, processor = build_tiny(texts, TinySpec(vocab_size=400, family=request.param))
    assert model.config.model_type == request.param
    return save_model_dir(model, processor, tmp_path_factory.mktemp(f"grpo_{request.param}") / "model")
