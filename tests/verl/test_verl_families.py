"""veRL's agent loop on tiny Qwen3-VL and Qwen3.5 processors (16 px patches; ``hf_model_type``
qwen3_vl / qwen3_5): the response tokens and masks equal the SFT encoding token for token, as for
Qwen2.5-VL — the checks of test_verl_agent_loop.py collected again with this module's processor."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("verl.experimental.agent_loop",
                    reason="veRL is tested in its own environment: make test-verl")

from test_verl_agent_loop import (  # noqa: F401 - collected here again
    test_image_search_runs_once,
    test_masks_equal_the_sft_encoding,
)


@pytest.fixture(scope="module", params=["qwen3_vl", "qwen3_5"])
def model_type(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def processor(model_type: str) -> Any:
    from deepmmsearch.conversation.families import family_for
    from deepmmsearch.models.processor import make_processor
    from deepmmsearch.models.tiny import TinySpec, default_texts, tiny_image_processor, train_tokenizer

    spec = TinySpec(family=model_type)
    fam = family_for(spec.family)
    proc = make_processor(train_tokenizer(default_texts(), spec.vocab_size),
                          tiny_image_processor(fam, spec), family=fam)
    assert proc.image_processor.patch_size == 16
    return proc
