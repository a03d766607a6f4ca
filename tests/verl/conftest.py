"""Fixtures for the veRL adapter tests (run in .venv-verl: `make test-verl`).

Nothing here imports veRL at module level: in the main environment every test module skips at
its top and these fixtures are never built. This folder has no ``__init__.py``: as a package it
would be named ``verl`` and hide the real one. For the same reason the modules skip on
``verl.experimental.agent_loop`` (a bare ``verl`` could resolve to this folder).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENE = REPO / "tests" / "fixtures" / "scene.png"
QUESTION = "What is the wingspan of this bird?"


@pytest.fixture(scope="session")
def processor() -> Any:
    """The tiny Qwen2.5-VL processor (tokenizer trained locally, PIL image processor)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from deepmmsearch.models.processor import make_processor
    from deepmmsearch.models.tiny import TinySpec, default_texts, train_tokenizer

    spec = TinySpec()
    tok = train_tokenizer(default_texts(), spec.vocab_size)
    return make_processor(tok, Qwen2VLImageProcessorPil(min_pixels=spec.min_pixels,
                                                       max_pixels=spec.max_pixels))


@pytest.fixture
def model_type() -> str:
    """The checkpoint's ``model_type`` veRL is told (``hf_model_type``); see test_verl_families.py."""
    return "qwen2_5_vl"


@pytest.fixture
def tokenizer(processor: Any) -> Any:
    return processor.tokenizer


@pytest.fixture(scope="session")
def _base_config() -> Any:
    from hydra import compose, initialize_config_module

    with initialize_config_module("verl.trainer.config", version_base=None):
        return compose("ppo_trainer", overrides=[
            "actor_rollout_ref.rollout.name=vllm",
            "data.max_prompt_length=2048",
            "data.max_response_length=2048",
            "actor_rollout_ref.rollout.multi_turn.enable=True",
            "actor_rollout_ref.rollout.multi_turn.max_user_turns=10",
            "actor_rollout_ref.rollout.multi_turn.max_assistant_turns=11",
            "actor_rollout_ref.rollout.multi_turn.max_tool_response_length=4096",
            "actor_rollout_ref.rollout.multi_turn.format=deepmmsearch_tags",
            f"actor_rollout_ref.rollout.multi_turn.tool_config_path={REPO}/configs/verl/tools.yaml",
        ])


@pytest.fixture
def verl_config(_base_config: Any):
    """``verl_config(**{"a.b": v})``: the composed veRL config with a few keys changed."""
    from omegaconf import OmegaConf

    def make(**changes: Any) -> Any:
        cfg = copy.deepcopy(_base_config)
        for key, value in changes.items():
            OmegaConf.update(cfg, key, value)
        return cfg

    return make


@pytest.fixture
def scene() -> Any:
    from PIL import Image

    with Image.open(SCENE) as im:
        return im.convert("RGB")


@pytest.fixture
def agent_prompt(scene: Any):
    """The first user message as veRL's dataset builds it: our E.1 prompt, the image as a block."""
    from deepmmsearch.data.export import content_blocks, prompt_text
    from deepmmsearch.prompts import get_prompts
    from deepmmsearch.types import Sample

    def make(question: str = QUESTION) -> list[dict[str, Any]]:
        text = prompt_text(Sample("q1", question, ["131 to 170 cm"], image=str(SCENE)),
                           get_prompts("paper"))
        blocks = [{"type": "image", "image": scene} if b["type"] == "image" else b
                  for b in content_blocks(text)]
        return [{"role": "user", "content": blocks}]

    return make


class FakeServer:
    """A scripted rollout server: each generate() returns the next text's token ids."""

    def __init__(self, tokenizer: Any, texts: list[str], logprob: float = -0.5) -> None:
        self.tokenizer, self.texts, self.logprob = tokenizer, list(texts), logprob
        self.calls: list[dict[str, Any]] = []

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict,
                       image_data: Any = None, **kwargs: Any) -> Any:
        from verl.workers.rollout.replica import TokenOutput

        self.calls.append({"prompt_ids": list(prompt_ids), "sampling_params": dict(sampling_params),
                           "images": len(image_data or [])})
        if not self.texts:
            raise AssertionError("the scripted server ran out of turns")
        ids = self.tokenizer.encode(self.texts.pop(0), add_special_tokens=False)
        return TokenOutput(token_ids=ids, log_probs=[self.logprob] * len(ids))


@pytest.fixture
def fake_server(tokenizer: Any):
    return lambda texts: FakeServer(tokenizer, texts)


@pytest.fixture
def tools() -> list[Any]:
    from verl.tools.tool_registry import load_all_tools

    return load_all_tools(str(REPO / "configs" / "verl" / "tools.yaml"), None)


@pytest.fixture
def make_loop(processor: Any, verl_config: Any, tools: list[Any], model_type: str):
    """Build an agent loop (ours by default) around a fake server, inside the running event loop."""
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap

    from deepmmsearch.train.verl.agent_loop import DeepMMSearchAgentLoop
    from deepmmsearch.train.verl.dataset import DeepMMSearchRLDataset

    def make(server: Any, cls: type = DeepMMSearchAgentLoop, tool_list: list | None = None,
             **changes: Any) -> Any:
        cfg = verl_config(**changes)
        return cls(trainer_config=DictConfigWrap(cfg), server_manager=server,
                   tokenizer=processor.tokenizer, processor=processor,
                   dataset_cls=DeepMMSearchRLDataset, data_config=DictConfigWrap(cfg.data),
                   hf_model_type=model_type,
                   tools=ToolListWrap(tools if tool_list is None else tool_list))

    return make


@pytest.fixture(autouse=True)
def _fresh_runtimes():
    """Each test gets its own toolbox (the fixture backends count their calls)."""
    from deepmmsearch.train.verl import session

    session._RUNTIMES.clear()
    yield
    session._RUNTIMES.clear()
