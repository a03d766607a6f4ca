"""SFT on the tiny Qwen2.5-VL: LoRA leaves the vision tower alone and moves only its adapters, the
loss falls, a checkpoint resumes exactly, and the saved model answers through ``ask``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from deepmmsearch.cli import main as cli_main
from deepmmsearch.config import load_config
from deepmmsearch.registry import ConfigError

from .conftest import ENTITIES, QUESTION

pytestmark = pytest.mark.slow


def _config(tmp: Path, data: Path, **over) -> Path:
    cfg = {"stage": "sft", "data": str(data), "tiny": {"vocab_size": 400}, "out": str(tmp / "run"),
           "per_device_batch_size": 2, "global_batch_size": 2, "lr_scheduler": "constant",
           "warmup_ratio": 0.0, "logging_steps": 1, "save_steps": 1000, "torch_threads": 1,
           "device": "cpu"}
    cfg.update(over)
    path = tmp / "sft.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lora_run(sft_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lora")
    cfg = _config(tmp, sft_data[1], method="lora", max_steps=24, learning_rate=5e-3,
                  lora={"r": 8, "alpha": 16, "dropout": 0.0})
    assert cli_main(["sft", "-c", str(cfg), "--json"]) == 0
    return tmp / "run"


def test_lora_moves_adapters_only(lora_run):
    init = load_file(str(lora_run / "init" / "model.safetensors"))
    merged = load_file(str(lora_run / "model" / "model.safetensors"))
    adapter = load_file(str(lora_run / "adapter" / "adapter_model.safetensors"))
    assert adapter and all("visual" not in k for k in adapter)
    assert all("language_model" in k for k in adapter)
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero
    for name, w in init.items():
        moved = not torch.equal(w, merged[name])
        # saved in the checkpoint layout: language model under model.*, vision under visual.*
        targeted = "visual" not in name and any(
            p in name for p in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"))
        assert moved == (targeted and name.endswith("weight")), name  # vision, norms, embeddings frozen


def test_lora_loss_falls_and_outputs_are_written(lora_run):
    log = [json.loads(line) for line in (lora_run / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == 24
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.2
    summary = json.loads((lora_run / "summary.json").read_text())
    assert summary["steps"] == 24 and summary["trainable_parameters"] > 0
    assert (lora_run / "loss.png").exists() and (lora_run / "config.yaml").exists()
    cfg = json.loads((lora_run / "adapter" / "adapter_config.json").read_text())
    assert Path(cfg["base_model_name_or_path"]) == (lora_run / "init").resolve()


def test_adapter_and_merged_model_agree(lora_run):
    from deepmmsearch.models.loading import load_model_and_processor

    a, proc = load_model_and_processor(lora_run / "adapter", device="cpu", dtype="float32")
    m, _ = load_model_and_processor(lora_run / "model", device="cpu", dtype="float32")
    ids = torch.tensor([proc.tokenizer.encode("<reason>It is a Kavo.</reason>")])
    with torch.no_grad():
        assert torch.allclose(a(input_ids=ids).logits, m(input_ids=ids).logits, atol=1e-5)


def _weights(run: Path) -> dict:
    return load_file(str(run / "model" / "model.safetensors"))


def test_checkpoint_resumes_exactly(sft_data, tmp_path):
    """3 steps + resume to 6 == 6 steps straight (constant lr, full fine-tuning)."""
    from deepmmsearch.train.sft import run_sft

    common = {"method": "full", "learning_rate": 3e-3, "save_steps": 3, "max_examples": 4}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    run_sft(load_config(_config(tmp_path / "a", sft_data[1], max_steps=3, **common), expect="sft"))
    ckpt = tmp_path / "a" / "run" / "checkpoints" / "checkpoint-3"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    state["log_history"][0]["loss"] = 123.0  # a mark: only a resumed run carries it
    (ckpt / "trainer_state.json").write_text(json.dumps(state))
    resumed = run_sft(load_config(_config(tmp_path / "a", sft_data[1], max_steps=6, resume=True,
                                          **common), expect="sft"))
    assert resumed.steps == 6
    losses = [(r["step"], r["loss"]) for r in resumed.log_history if "loss" in r]
    assert [st for st, _ in losses] == [1, 2, 3, 4, 5, 6] and losses[0][1] == 123.0
    straight = run_sft(load_config(_config(tmp_path / "b", sft_data[1], max_steps=6, **common),
                                   expect="sft"))
    wa, wb = _weights(resumed.out), _weights(straight.out)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    assert not all(torch.equal(wa[k], v) for k, v in load_file(
        str(resumed.out / "init" / "model.safetensors")).items())


def test_full_finetune_answers_through_ask(sft_data, tmp_path, capsys):
    """Train from scratch on two trajectories, then `deepmmsearch ask` with policy hf."""
    cfg = _config(tmp_path, sft_data[1], method="full", max_steps=100, learning_rate=1e-2,
                  max_examples=2, per_device_batch_size=1, global_batch_size=1, logging_steps=20)
    assert cli_main(["sft", "-c", str(cfg)]) == 0
    capsys.readouterr()
    text_hits = {f"{n} top speed": [{"title": n, "url": f"https://sim/{n}/facts",
                                     "snippet": f"The {n} runs at {s} km/h."}] for n, s in ENTITIES}
    image_hits = {f"{56 + 2 * i}x56": [{"title": n, "url": f"https://sim/{n}",
                                        "snippet": f"A photo of a {n}."}] for i, (n, _) in enumerate(ENTITIES)}
    agent = {"stage": "agent", "agent": {
        "policy": {"name": "hf", "model": str(tmp_path / "run" / "model"), "device": "cpu",
                   "torch_threads": 1},
        "text_search": {"name": "fixture", "responses": text_hits},
        "image_search": {"name": "fixture", "responses": image_hits},
        "grounder": {"name": "fixed"}, "summarizer": {"name": "none"}, "prompts": "compact"}}
    agent_cfg = tmp_path / "agent.yaml"
    agent_cfg.write_text(yaml.safe_dump(agent), encoding="utf-8")
    image = str(sft_data[1].parent / "entity1.png")
    assert cli_main(["ask", "-c", str(agent_cfg), "--image", image, QUESTION, "--json"]) == 0
    traj = json.loads(capsys.readouterr().out)
    assert traj["answer"] == f"{ENTITIES[1][1]} km/h", [t["model_text"] for t in traj["turns"]]
    assert [t["action"]["kind"] for t in traj["turns"]] == ["image_search", "text_search", "answer"]


def test_plain_loss_equals_trl_fused_loss(sft_data, tmp_path):
    """Our small-vocabulary trainer computes the same loss as TRL's fused LM-head kernel."""
    from deepmmsearch.train.sft_trainer import (
        PlainLossSFTTrainer,
        build_trainer,
        load_start_model,
        prepare_data,
    )

    losses = []
    for fused in (True, False):
        cfg = load_config(_config(tmp_path, sft_data[1], method="full", max_steps=1,
                                  fused_lm_head=fused), expect="sft")
        model, processor, examples = load_start_model(cfg)
        rows, _ = prepare_data(cfg, processor, examples)
        trainer = build_trainer(cfg, model, processor, rows, [])
        assert isinstance(trainer, PlainLossSFTTrainer) != fused
        batch = trainer.data_collator(rows[:4])
        n = int((batch["labels"][:, 1:] != -100).sum())
        with torch.no_grad():
            losses.append(float(trainer.compute_loss(model, dict(batch), num_items_in_batch=n)))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_config_errors_before_anything_runs(sft_data, tmp_path):
    with pytest.raises(ConfigError, match="exactly one"):
        load_config(data={"stage": "sft", "data": "x.jsonl"})
    with pytest.raises(ConfigError, match="did you mean"):
        load_config(data={"stage": "sft", "data": "x.jsonl", "model": "m", "learning_rat": 1.0})
    with pytest.raises(ConfigError, match="train_vision"):
        load_config(data={"stage": "sft", "data": "x.jsonl", "model": "m", "train_vision": True})
    from deepmmsearch.train.sft import grad_accumulation

    cfg = load_config(data={"stage": "sft", "data": "x.jsonl", "model": "m",
                            "per_device_batch_size": 3, "global_batch_size": 8})
    with pytest.raises(ConfigError, match="multiple"):
        grad_accumulation(cfg, processes=1)


def test_augment_copies_reach_training_and_the_tokenizer_choice(sft_data, tmp_path):
    """sft.augment: the renamed copies are training examples; the tiny tokenizer is trained on
    them too unless ``tokenizer_on_copies: false`` (then on the distilled texts alone)."""
    from deepmmsearch.models.tiny import train_tokenizer
    from deepmmsearch.train.sft_data import example_texts, read_examples
    from deepmmsearch.train.sft_trainer import load_start_model

    originals = read_examples(sft_data[1])
    vocabs = {}
    for on_copies in (True, False):
        (tmp_path / str(on_copies)).mkdir()
        cfg = load_config(_config(tmp_path / str(on_copies), sft_data[1], method="full", max_steps=1,
                                  augment={"copies": 2, "tokenizer_on_copies": on_copies}), expect="sft")
        _, processor, examples = load_start_model(cfg)
        assert len(examples) == 3 * len(originals)
        assert {e.id for e in examples} >= {f"{e.id}~r1" for e in originals}
        vocabs[on_copies] = processor.tokenizer.get_vocab()
    plain = train_tokenizer(example_texts(originals), 400, prefix_space=False).get_vocab()
    assert vocabs[False] == plain and vocabs[True] != plain
