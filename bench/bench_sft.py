"""SFT step throughput: our SFT stage vs a bare TRL ``SFTTrainer`` on the same tiny model and data.

Arms (same tiny random Qwen2.5-VL, same LoRA r=8 on the language model, same batches, fp32, CPU):

- ``bare``: TRL's ``SFTTrainer`` with its own vision collator on ``messages`` + ``images`` rows
  (the chat template applied and images processed at every step, loss on every token);
- ``ours``: ``deepmmsearch.train.sft_trainer.build_trainer`` — the same ``SFTTrainer`` with our
  collator over pre-encoded rows (loss only on the model's tokens, ``<information>`` masked) and,
  for this small vocabulary, transformers' plain loss instead of TRL's fused LM-head kernel;
- ``ours_fused``: the same with TRL's fused LM-head kernel (``fused_lm_head: true``);
- ``loop``: a plain PyTorch loop (our collator, AdamW, no Trainer), to show the Trainer's own cost.

Goal: ours ≥ 0.95 × bare in steps per second. Run::

    nice -n 10 .venv/bin/python bench/bench_sft.py [--steps 30] [--batch 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
logging.getLogger("transformers").setLevel(logging.ERROR)

NAMES = ["Kavo", "Telmi", "Rusan", "Pobit", "Lanor", "Miska", "Dorvel", "Sutra", "Avel", "Brono",
         "Cimra", "Dusk", "Elvo", "Fenri", "Gasto", "Hilum"]


def make_data(folder: Path, prompts: str) -> Path:
    """Scripted 3-turn episodes (image search → text search → answer) over fixture tools."""
    from PIL import Image, ImageDraw

    from deepmmsearch.agent.loop import run_episode
    from deepmmsearch.agent.state import Episode
    from deepmmsearch.agent.toolbox import Toolbox
    from deepmmsearch.policies.scripted import ScriptedPolicy
    from deepmmsearch.prompts import get_prompts
    from deepmmsearch.tools.grounding.basic import FixedGrounder
    from deepmmsearch.tools.image.fixture import FixtureImageSearch
    from deepmmsearch.tools.summarize import PassthroughSummarizer
    from deepmmsearch.tools.text.fixture import FixtureTextSearch

    image_hits, text_hits, scripts, eps = {}, {}, {}, []
    for i, name in enumerate(NAMES):
        w = 56 + 2 * i
        img = Image.new("RGB", (w, 56), (15 * i, 90, 200 - 10 * i))
        ImageDraw.Draw(img).ellipse([8, 8, 40, 40], fill=(255, 255 - 12 * i, 0))
        path = folder / f"e{i}.png"
        img.save(path)
        speed = str(10 + 5 * i)
        image_hits[f"{w}x56"] = [{"title": name, "url": f"https://sim/{name}", "snippet": f"A photo of a {name}."}]
        text_hits[f"{name} top speed"] = [{"title": name, "url": f"https://sim/{name}/f",
                                           "snippet": f"The {name} runs at {speed} km/h."}]
        scripts[f"e{i}"] = [
            "<reason>I do not know this animal.</reason><img_search><img></img_search>",
            f"<reason>It is a {name}.</reason><text_search>{name} top speed</text_search>",
            f"<reason>The page gives the speed.</reason><answer>{speed} km/h</answer>",
        ]
        eps.append(Episode("What is the top speed of this animal?", str(path),
                           prompts=get_prompts(prompts), episode_id=f"e{i}"))
    tools = Toolbox(text_search=FixtureTextSearch(responses=text_hits),
                    image_search=FixtureImageSearch(responses=image_hits),
                    grounder=FixedGrounder(), summarizer=PassthroughSummarizer())
    policy = ScriptedPolicy(scripts=scripts)

    async def go() -> list:
        return [await run_episode(ep, policy, tools) for ep in eps]

    out = folder / "sft.jsonl"
    with open(out, "w", encoding="utf-8") as fh:
        fh.writelines(t.to_json() + "\n" for t in asyncio.run(go()))
    return out


def _cfg(data: Path, out: Path, steps: int, batch: int, **over):
    from deepmmsearch.config import load_config

    return load_config(data={
        "stage": "sft", "data": str(data), "model": str(out / "init"), "out": str(out / "run"),
        "method": "lora", "lora": {"r": 8, "alpha": 16, "dropout": 0.0}, "max_steps": steps,
        "learning_rate": 1e-3, "per_device_batch_size": batch, "global_batch_size": batch,
        "precision": "fp32", "device": "cpu", "logging_steps": 10_000, "save_steps": 10_000, **over,
    })


def run_ours(cfg) -> float:
    from deepmmsearch.train.sft_trainer import build_trainer, load_start_model, prepare_data

    model, processor, examples = load_start_model(cfg)
    rows, _ = prepare_data(cfg, processor, examples)
    trainer = build_trainer(cfg, model, processor, rows, [])
    trainer.args.disable_tqdm = True
    return trainer.train().metrics["train_runtime"]


def run_bare(cfg) -> float:
    from datasets import Dataset
    from peft import LoraConfig
    from PIL import Image
    from trl import SFTConfig, SFTTrainer

    from deepmmsearch.conversation.template import to_hf_messages
    from deepmmsearch.models.loading import load_model_and_processor
    from deepmmsearch.protocol import IMAGE_PLACEHOLDER
    from deepmmsearch.train.sft_data import read_examples

    model, processor = load_model_and_processor(cfg.model, device="cpu", dtype="float32")
    model.train()
    rows = []
    for ex in read_examples(cfg.data):
        msgs = to_hf_messages(ex.messages)
        msgs[0]["content"] = msgs[0]["content"].replace(IMAGE_PLACEHOLDER, "")  # TRL adds the image block
        rows.append({"messages": msgs, "images": [Image.open(p).convert("RGB") for p in ex.images]})
    args = SFTConfig(
        output_dir=str(Path(cfg.out) / "bare"), max_steps=cfg.max_steps, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.per_device_batch_size, gradient_accumulation_steps=1,
        bf16=False, use_cpu=True, gradient_checkpointing=False, logging_steps=10_000,
        save_strategy="no", report_to="none", max_length=None, disable_tqdm=True,
        lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio, seed=cfg.seed,
    )
    peft = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=cfg.lora.target_modules,
                      task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=processor, peft_config=peft)
    return trainer.train().metrics["train_runtime"]


def run_loop(cfg) -> float:
    import torch
    from peft import LoraConfig, get_peft_model

    from deepmmsearch.models.processor import ImageEncoder
    from deepmmsearch.train.sft_data import TrajectoryCollator
    from deepmmsearch.train.sft_trainer import load_start_model, prepare_data

    model, processor, examples = load_start_model(cfg)
    rows, _ = prepare_data(cfg, processor, examples)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                             target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM"))
    collate = TrajectoryCollator(processor.tokenizer, ImageEncoder(processor.image_processor, 4096))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(cfg.max_steps):
        idx = torch.randperm(len(rows), generator=gen)[: cfg.per_device_batch_size].tolist()
        loss = model(**collate([rows[i] for i in idx])).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--prompts", default="compact", choices=["compact", "paper"])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv if argv is not None else sys.argv[1:])

    import torch

    from deepmmsearch.models.loading import save_model_dir
    from deepmmsearch.models.tiny import TinySpec, build_tiny
    from deepmmsearch.train.sft_data import example_texts, read_examples

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = make_data(folder, args.prompts)
        save_model_dir(*build_tiny(example_texts(read_examples(data)), TinySpec()), folder / "init")
        cfg = _cfg(data, folder, args.steps, args.batch)
        fused = _cfg(data, folder, args.steps, args.batch, fused_lm_head=True)
        arms = (("bare", run_bare, cfg), ("ours", run_ours, cfg), ("ours_fused", run_ours, fused),
                ("loop", run_loop, cfg))
        times: dict[str, list[float]] = {a[0]: [] for a in arms}
        for r in range(args.repeats):  # interleaved, so machine load hits every arm alike
            for arm, fn, c in arms:
                times[arm].append(fn(c))
                print(f"repeat {r}: {arm:5s} {args.steps / times[arm][-1]:6.2f} steps/s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nSFT throughput, tiny Qwen2.5-VL, LoRA r=8, batch {args.batch}, {args.prompts} prompts, "
          f"{args.steps} steps, {args.threads} thread(s), median of {args.repeats}:")
    print("| arm | steps/s | ratio to bare |\n|---|---|---|")
    for arm in times:
        print(f"| {arm} | {args.steps / med[arm]:.2f} | {med['bare'] / med[arm]:.2f} |")
    ratio = med["bare"] / med["ours"]
    print(f"ours / bare = {ratio:.2f} (goal >= 0.95): {'OK' if ratio >= 0.95 else 'BELOW GOAL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
