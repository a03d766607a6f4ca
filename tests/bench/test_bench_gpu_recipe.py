"""bench/bench_gpu_recipe.py: the kept model cards build the published sizes, and ``--tiny`` runs
all three parts (SFT, generation, GRPO) through the project's code and reports real numbers."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_gpu_recipe.py"


def _bench():  # loaded as bench/run_all.py loads it (not registered in sys.modules)
    spec = importlib.util.spec_from_file_location("bench_gpu_recipe", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# the parameter counts the model cards state (safetensors totals): 8.29B and 8.77B
@pytest.mark.parametrize("name, total", [("qwen2.5-vl-7b", 8.292e9), ("qwen3-vl-8b", 8.767e9)])
def test_cards_build_the_published_sizes(name, total):
    bench = _bench()
    card = bench.load_card(name)
    processor = bench.make_processor(card, bench.PAPER)
    model = bench.build_model(card, processor, bench.PAPER, "meta")  # shapes only, no memory
    assert type(model).__name__ == bench.FAMILIES[card["family"]]
    counts = bench.parameter_counts(model)
    assert abs(counts["total"] - total) / total < 0.001
    text = model.config.get_text_config()
    assert text.vocab_size == card["config"].get("text_config", card["config"])["vocab_size"]
    assert model.config.image_token_id == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    # 448 x 448: 256 image tokens at patch 14, 196 at patch 16
    grid = processor.image_processor.get_number_of_image_patches(448, 448, {})
    assert grid // 4 == {"qwen2.5-vl-7b": 256, "qwen3-vl-8b": 196}[name]
    flops = bench.sft_model_flops(counts, model.config, 8192, grid)
    assert 4 * counts["text_matmul"] * 8192 < flops < 6 * counts["total"] * 8192


@pytest.mark.parametrize("name, image_tokens", [("qwen2.5-vl-7b", 256), ("qwen3-vl-8b", 196)])
def test_paper_shapes_sft_row(tmp_path, name, image_tokens):
    """At the paper's shapes the SFT step gets exactly 8,192 tokens with one 448 x 448 image."""
    bench = _bench()
    card = bench.load_card(name)
    processor = bench.make_processor(card, bench.PAPER)
    cfg = bench.sft_config(card, bench.PAPER, "cuda", tmp_path)  # only validated, nothing runs
    assert cfg.method == "lora" and cfg.lora.r == 8 and cfg.gradient_checkpointing and cfg.precision == "bf16"
    rows = bench.sft_rows(card, bench.PAPER, processor, cfg, bench.write_image(tmp_path, 448))
    assert len(rows) == 1 and len(rows[0]["input_ids"]) == 8192
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert rows[0]["input_ids"].count(pad) == image_tokens
    trained = sum(x != -100 for x in rows[0]["labels"])
    assert 1000 < trained < 8192  # model turns only; prompt and <information> masked


def test_unknown_model_is_an_error():
    with pytest.raises(SystemExit, match="unknown model"):
        _bench().load_card("qwen9")


def _positive(d: dict, keys: str) -> None:
    for k in keys.split():
        assert isinstance(d[k], (int, float)) and math.isfinite(d[k]) and d[k] > 0, (k, d[k])


@pytest.mark.slow  # about 15 s each: three tiny trainings in a subprocess
@pytest.mark.parametrize("name, cls, image_tokens", [
    ("qwen2.5-vl-7b", "Qwen2_5_VLForConditionalGeneration", 4),  # 56 px at patch 14: 2 x 2 merged
    ("qwen3-vl-8b", "Qwen3VLForConditionalGeneration", 1),  # 56 px -> 32 px at patch 16: 1
])
def test_tiny_run_reports_measurements(tmp_path, name, cls, image_tokens):
    out = tmp_path / "tiny.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--model", name, "--out", str(out)],
                          check=False, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| sft | tokens / s |" in proc.stdout and "| grpo | optimisation_s" in proc.stdout
    res = json.loads(out.read_text())
    assert res["mode"] == "tiny" and res["model"] == name and res["model_class"] == cls
    assert not [k for k in res if k.endswith("_error")]
    _positive(res, "matmul_tflops wall_s")
    sft = res["sft"]
    _positive(sft, "step_s tokens_per_s achieved_tflops mfu_vs_matmul peak_memory_gib trainable_parameters")
    assert sft["tokens_per_step"] == res["shapes"]["seq_len"] and 0 < sft["trained_tokens"] < sft["tokens_per_step"]
    assert sft["image_tokens"] == image_tokens and sft["steps_timed"] == res["shapes"]["sft_steps"]
    assert len(sft["step_s_all"]) == res["shapes"]["sft_warmup"] + res["shapes"]["sft_steps"]
    assert math.isclose(sft["tokens_per_s"], sft["tokens_per_step"] / sft["step_s"])
    assert sft["trainable_parameters"] < sft["parameters"]["total"] / 10  # LoRA only
    gen = res["generation"]
    _positive(gen, "tokens_per_s generation_s generated_tokens wall_s")
    # the scripted turns: image search, text search, answer; the 8 episodes batched together
    assert gen["episodes"] == 8 and gen["turns_per_episode"] == 3 and gen["tool_calls_per_episode"] == 2
    assert gen["answered"] == 8 and gen["mean_batch_rows"] > 1
    grpo = res["grpo"]
    _positive(grpo, "step_s generation_s optimisation_s tools_s peak_memory_gib")
    assert grpo["steps"] == 2 and grpo["steps_timed"] == 1 and grpo["tool_calls_per_episode"] == 2
    assert grpo["generation_s"] + grpo["optimisation_s"] <= grpo["step_s"] * 1.01
    assert 0.0 < grpo["reward"] < 1.0  # half the scripted answers are right
