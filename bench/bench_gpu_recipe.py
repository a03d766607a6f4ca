"""The real-size recipe on one GPU: SFT and GRPO steps of Qwen2.5-VL-7B (or Qwen3-VL-8B), random weights.

The model is built from the published configuration numbers kept in ``configs/models/*.json``
(random init, bf16, directly on the GPU; nothing is downloaded) with a tokenizer trained here on a
small corpus (its special-token ids replace the card's; the vocabulary size stays the card's, so
every shape is the real one). Three parts, each on a freshly built model, all through the
project's own code:

a. ``sft``: LoRA r = 8 SFT steps at the paper's shapes — one 8,192-token trajectory with one
   448 × 448 image per step, vision frozen, gradient checkpointing, bf16 — through
   ``train/sft_trainer.py`` (``prepare_data`` → ``build_trainer`` → TRL's ``SFTTrainer``). Reported:
   seconds per step, tokens/s, peak GPU memory, and model FLOP utilisation (MFU). Model FLOPs per
   step count the text model's forward and its backward to the activations (LoRA: the frozen
   weights get no gradient, so 2 × forward; the LoRA matrices' own gradients are left out), causal
   attention, and the frozen vision tower's forward; the recomputation that gradient
   checkpointing adds is not counted (it is work, not model progress). MFU is given against the
   card's bf16 reference (``--peak-tflops``; H200: 790 TFLOP/s, what a large bf16 matrix product
   reaches on it) and against a large matrix product measured in this same process.
b. ``generation``: 8 multi-turn episodes at once through the ``hf`` policy
   (``policies/hf.py``, batched ``generate``) with fake tools (fixture text and image search). A
   random model writes no actions, so a logits processor sets each sampled token to a scripted
   turn (``<reason>`` of ``--reason-tokens`` tokens, then a whole-image search, a text search,
   an answer): the forward passes are the real ones, only the choice of token is scripted, and
   the tools, injections and stops are real. Tokens are also kept inside the tokenizer's own
   vocabulary. Reported: generated tokens/s, turns, tool calls, wall time.
c. ``grpo``: GRPO steps of 1 prompt × 8 generations through ``train/grpo_trainer.py``
   (``GRPORun``: TRL's ``GRPOTrainer`` with our ``rollout_func``, LoRA r = 8, the paper's
   ``beta`` 0.001, gradient checkpointing), the same scripted episodes (half answer right, so
   the advantages are not all zero). Reported: the time split of ``bench/bench_grpo.py``
   (generation, tools, judge, optimisation) from the run's own metrics, the first step left
   out as a warm-up, and peak memory.

It prints one table and writes it as JSON (``--out``). ``--tiny`` runs the same code with tiny
shapes (2 layers, 768-token trajectories, 56 × 56 images) on the CPU — ``tests/bench`` runs it.
On the GPU machine (torch 2.11, transformers 5.17, no TRL): ``bench/run_gpu_recipe.sh``
(``make bench-gpu``), which installs the carried wheels and runs this under an 8-minute limit::

    python bench/bench_gpu_recipe.py --model qwen2.5-vl-7b --out runs/bench_gpu/qwen2_5_vl_7b.json
    python bench/bench_gpu_recipe.py --tiny --out /tmp/tiny.json       # CPU, about 20 s

Without a GPU and without ``--device`` it falls back to ``--tiny`` (so ``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, NamedTuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
logging.getLogger("transformers").setLevel(logging.ERROR)
log = logging.getLogger("bench_gpu_recipe")

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "qwen2.5-vl-7b": ROOT / "configs" / "models" / "qwen2_5_vl_7b.json",
    "qwen3-vl-8b": ROOT / "configs" / "models" / "qwen3_vl_8b.json",
}
FAMILIES = {"qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
            "qwen3_vl": "Qwen3VLForConditionalGeneration"}
CARD_KEYS = {"about", "name", "hub_id", "family", "config"}
# bench_grpo.py's split of a GRPO step (the keys of the run's metrics.jsonl rows, time/<part>)
GRPO_PARTS = ("generation_s", "tools_s", "tools_exposed_s", "rollout_other_s", "judge_s",
              "optimisation_s", "step_s")
H200_BF16_TFLOPS = 790.0  # a large bf16 matrix product on one H200 (device notes, measured)
WORDS = ("the", "a", "of", "and", "in", "was", "is", "on", "by", "for", "with", "from", "at", "to",
         "river", "bird", "bridge", "tower", "city", "built", "species", "known", "wingspan",
         "island", "museum", "painted", "1907", "1843", "north", "old", "large", "small", "red",
         "white", "black", "stone", "century", "architect", "designed", "found", "near", "coast",
         "mountain", "lake", "feathers", "long", "record", "height", "metres", "years", "named",
         "after", "famous", "local", "first", "second")


class Shapes(NamedTuple):
    """What one run measures; ``PAPER`` is the paper's SFT/GRPO setting, ``TINY`` the CPU test.
    (A named tuple, not a dataclass: ``bench/run_all.py`` loads benches without registering them
    in ``sys.modules``, which dataclasses need.)"""

    seq_len: int = 8192  # SFT tokens per step (one trajectory)
    image_px: int = 448  # one square image
    sft_steps: int = 4  # timed SFT steps, after the warm-up steps
    sft_warmup: int = 2
    episodes: int = 8  # generation part
    reason_tokens: int = 200  # scripted <reason> length per turn
    hit_words: int = 60  # words per fixture search hit (5 hits per call)
    grpo_steps: int = 2  # the first is a warm-up
    generations: int = 8
    max_completion: int = 8192
    matmul_n: int = 8192
    tiny: bool = False


PAPER = Shapes()
TINY = Shapes(seq_len=768, image_px=56, sft_steps=2, sft_warmup=1, episodes=8, reason_tokens=6,
              hit_words=8, grpo_steps=2, generations=8, max_completion=512, matmul_n=256, tiny=True)


# -- the model -------------------------------------------------------------------------------

def load_card(name: str) -> dict[str, Any]:
    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    card = json.loads(MODELS[name].read_text(encoding="utf-8"))
    unknown = set(card) - CARD_KEYS
    if unknown or card.get("family") not in FAMILIES:
        raise SystemExit(f"{MODELS[name]}: unknown keys {sorted(unknown)} or family {card.get('family')!r}")
    return card


def tiny_config(card: dict[str, Any], vocab: int) -> dict[str, Any]:
    """The card's configuration with tiny sizes (same keys, same family, same code path)."""
    cfg = json.loads(json.dumps(card["config"]))
    text = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": vocab}
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64}
    if card["family"] == "qwen2_5_vl":
        cfg.update(text)
        cfg["rope_scaling"] = {**cfg["rope_scaling"], "mrope_section": [2, 3, 3]}
        vision["fullatt_block_indexes"] = [1]
    else:
        cfg["text_config"].update(text, head_dim=16)
        cfg["text_config"]["rope_scaling"] = {**cfg["text_config"]["rope_scaling"], "mrope_section": [4, 2, 2]}
        vision["deepstack_visual_indexes"] = [0]
    cfg["vision_config"].update(vision)
    return cfg


def make_processor(card: dict[str, Any], shapes: Shapes) -> Any:
    """A BPE tokenizer trained on the prompts and the filler words, and the image processor of
    the card's patch size, bounded to exactly one ``image_px`` square."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from deepmmsearch.models.processor import make_processor as bundle
    from deepmmsearch.models.tiny import default_texts, train_tokenizer

    texts = default_texts() + [" ".join(WORDS)] * 4
    tok = train_tokenizer(texts, vocab_size=600, prefix_space=False)
    vis = card["config"]["vision_config"]
    px = shapes.image_px * shapes.image_px
    image = Qwen2VLImageProcessorPil(patch_size=vis["patch_size"], merge_size=vis["spatial_merge_size"],
                                     temporal_patch_size=vis["temporal_patch_size"],
                                     min_pixels=px, max_pixels=px)
    return bundle(tok, image)


def build_model(card: dict[str, Any], processor: Any, shapes: Shapes, device: str) -> Any:
    """The card's architecture with random weights, bf16 on a GPU (fp32 for ``--tiny`` on a CPU),
    built directly on ``device``; the card's token ids replaced by the tokenizer's."""
    import torch
    import transformers
    from transformers import AutoConfig, GenerationConfig

    from deepmmsearch.conversation.template import (
        ENDOFTEXT,
        IM_END,
        IMAGE_PAD,
        VIDEO_PAD,
        VISION_END,
        VISION_START,
    )

    tok = processor.tokenizer
    data = tiny_config(card, len(tok) + 64) if shapes.tiny else json.loads(json.dumps(card["config"]))
    ids = tok.convert_tokens_to_ids
    data.update(image_token_id=ids(IMAGE_PAD), video_token_id=ids(VIDEO_PAD),
                vision_start_token_id=ids(VISION_START), vision_end_token_id=ids(VISION_END))
    text = data.get("text_config", data)
    text.update(bos_token_id=ids(ENDOFTEXT), eos_token_id=ids(IM_END), pad_token_id=ids(ENDOFTEXT))
    config = AutoConfig.for_model(data.pop("model_type"), **data)
    if config.get_text_config().vocab_size < len(tok):
        raise ValueError("the tokenizer is larger than the model's vocabulary")
    cls = getattr(transformers, FAMILIES[card["family"]])
    dtype = torch.float32 if shapes.tiny else torch.bfloat16
    torch.manual_seed(0)
    with torch.device(device):
        model = cls._from_config(config, dtype=dtype)
    model.generation_config = GenerationConfig(eos_token_id=ids(IM_END), pad_token_id=ids(ENDOFTEXT),
                                               bos_token_id=ids(ENDOFTEXT), do_sample=False)
    return model


def parameter_counts(model: Any) -> dict[str, int]:
    import torch

    out = {"total": 0, "vision": 0, "text_matmul": 0, "vision_matmul": 0, "embedding": 0}
    for name, p in model.named_parameters():
        out["total"] += p.numel()
        out["vision"] += p.numel() if "visual" in name else 0
    for name, m in model.named_modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv3d)) and "lora_" not in name:
            out["vision_matmul" if "visual" in name else "text_matmul"] += m.weight.numel()
        elif isinstance(m, torch.nn.Embedding) and "visual" not in name:
            out["embedding"] += m.weight.numel()
    return out


def sft_model_flops(params: dict[str, int], config: Any, tokens: int, patches: int) -> float:
    """Model FLOPs of one LoRA SFT step (see the module docstring): 2 × the text forward (matmuls
    over every token + causal attention), plus the frozen vision tower's forward."""
    text = config.get_text_config()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    attn_dim = text.num_attention_heads * head_dim
    fwd_text = 2.0 * params["text_matmul"] * tokens + 2.0 * text.num_hidden_layers * tokens ** 2 * attn_dim
    vis = config.vision_config
    fwd_vision = 2.0 * params["vision_matmul"] * patches + 4.0 * vis.depth * patches ** 2 * vis.hidden_size
    return 2.0 * fwd_text + fwd_vision


# -- measurement helpers ---------------------------------------------------------------------

def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_memory(device: str) -> float:
    """Free what earlier parts left and restart the peak; returns the GiB still allocated."""
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / 2 ** 30
    return 0.0


def peak_memory(device: str) -> dict[str, Any]:
    """Peak GPU memory since the last reset; on a CPU the process's peak resident size."""
    import torch

    if device.startswith("cuda"):
        return {"peak_memory_gib": torch.cuda.max_memory_allocated() / 2 ** 30,
                "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2 ** 30,
                "memory_source": "torch.cuda.max_memory_allocated"}
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"peak_memory_gib": rss / 2 ** 30, "peak_reserved_gib": None,
            "memory_source": "process peak RSS (CPU; not reset between parts)"}


def matmul_tflops(device: str, n: int, tiny: bool) -> float:
    """A large square matrix product, in the dtype the bench trains in (3 warm-ups, 10 timed)."""
    import torch

    dtype = torch.float32 if tiny else torch.bfloat16
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    sync(device)
    return 10 * 2.0 * n ** 3 / (time.perf_counter() - t0) / 1e12


class StepClock:
    """A ``TrainerCallback`` that records the wall time of every optimizer step (GPU synced)."""

    def __init__(self, device: str) -> None:
        from transformers import TrainerCallback

        clock, self.times = self, []

        class Clock(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                sync(device)
                clock.t0 = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                sync(device)
                clock.times.append(time.perf_counter() - clock.t0)

        self.callback = Clock()


# -- scripted episodes -----------------------------------------------------------------------

def filler(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def reason_text(tokenizer: Any, rng: random.Random, n_tokens: int) -> str:
    words: list[str] = []
    while len(tokenizer.encode(" ".join(words), add_special_tokens=False)) < n_tokens:
        words.append(rng.choice(WORDS))
    return "<reason>" + " ".join(words) + "</reason>"


GOLD = "1907"


def turn_script(tokenizer: Any, shapes: Shapes, episode_id: str, turn: int) -> str:
    """The scripted text of turn ``turn``: whole-image search, text search, then an answer that
    is right for about half of the episodes (which half: a hash of the episode id)."""
    rng = random.Random(zlib.crc32(f"{episode_id}/{turn}".encode()))
    reason = reason_text(tokenizer, rng, shapes.reason_tokens)
    if turn == 0:
        return reason + "<img_search><img></img_search>"
    if turn == 1:
        return reason + "<text_search>" + filler(rng, 4) + "</text_search>"
    answer = GOLD if zlib.crc32(episode_id.encode()) % 2 == 0 else "1843"
    return reason + f"<answer>{answer}</answer>"


class ScriptedTokens:
    """A logits processor for :func:`deepmmsearch.models.generation.generate_batch`: keeps tokens
    inside the tokenizer's vocabulary and sets each row's next token to its scripted turn (then
    end-of-turn). :meth:`begin` gives the rows' scripts before each ``generate`` call."""

    def __init__(self, tokenizer: Any) -> None:
        self.vocab = len(tokenizer)
        self.eos = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
        self.targets: list[list[int]] = []
        self.start: int | None = None

    def begin(self, targets: list[list[int]]) -> None:
        self.targets, self.start = targets, None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.start is None:
            self.start = input_ids.shape[1]
        n = input_ids.shape[1] - self.start
        forced = torch.full_like(scores, -math.inf)
        for b, target in enumerate(self.targets):
            forced[b, target[n] if n < len(target) else self.eos] = 0.0
        if not self.targets:
            forced = scores.clone()
            forced[:, self.vocab:] = -math.inf
        return forced


def script_policy(policy: Any, shapes: Shapes) -> ScriptedTokens:
    """Install :class:`ScriptedTokens` on an ``HFPolicy``: before each batched ``generate`` the
    rows' scripts are set from their requests (episode id, turns so far)."""
    tok = policy.tokenizer
    forcer = ScriptedTokens(tok)
    inner = policy._run

    def run(batch: list) -> list:
        forcer.begin([tok.encode(turn_script(tok, shapes, p.request.episode_id,
                                             sum(m.role == "assistant" for m in p.request.messages)),
                                 add_special_tokens=False) for p in batch])
        return inner(batch)

    policy._run = run
    policy.extra_processors = [forcer]
    return forcer


def agent_data(shapes: Shapes) -> dict[str, Any]:
    """Fake tools (fixture searches; 5 hits of ``hit_words`` words), the paper's prompts and budgets."""
    rng = random.Random(1)
    hits = [{"title": f"Result {i}", "url": f"https://example.org/{i}", "snippet": filler(rng, shapes.hit_words)}
            for i in range(5)]
    return {
        "text_search": {"name": "fixture", "responses": {"*": hits}},
        "image_search": {"name": "fixture", "responses": {"*": hits}},
        "grounder": {"name": "fixed", "box": [0, 0, shapes.image_px, shapes.image_px]},
        "summarizer": {"name": "none"},
        "prompts": "paper", "top_k": 5,
        "limits": {"max_tool_calls": 10, "max_image_searches": 1, "max_turns": 11,
                   "max_response_tokens": shapes.max_completion,
                   "max_new_tokens_per_turn": shapes.reason_tokens + 64},
    }


def write_image(folder: Path, px: int) -> Path:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (px, px), (40, 90, 160))
    ImageDraw.Draw(img).ellipse([px // 4, px // 4, 3 * px // 4, 3 * px // 4], fill=(240, 200, 30))
    path = folder / "image.png"
    img.save(path)
    return path


QUESTION = "When was this bridge built?"


# -- (a) SFT ---------------------------------------------------------------------------------

def sft_examples(processor: Any, shapes: Shapes, image: Path) -> list:
    """One trajectory of more than ``seq_len`` tokens (prompt with the image, model turns and
    injected ``<information>``); ``max_length`` cuts it to exactly ``seq_len``."""
    from deepmmsearch.agent.state import Episode
    from deepmmsearch.prompts import get_prompts
    from deepmmsearch.train.sft_data import SFTExample
    from deepmmsearch.types import Message

    tok, rng = processor.tokenizer, random.Random(0)
    messages = list(Episode(QUESTION, str(image), prompts=get_prompts("paper")).prompt)
    n = 0
    while n < shapes.seq_len + 64:
        messages.append(Message("assistant", reason_text(tok, rng, shapes.reason_tokens)
                                + "<text_search>" + filler(rng, 4) + "</text_search>"))
        messages.append(Message("user", "<information>" + filler(rng, 5 * shapes.hit_words) + "</information>"))
        n = sum(len(tok.encode(m.content, add_special_tokens=False)) for m in messages)
    messages.append(Message("assistant", reason_text(tok, rng, 8) + f"<answer>{GOLD}</answer>"))
    return [SFTExample("long", messages, [str(image)])]


def sft_config(card: dict, shapes: Shapes, device: str, work: Path) -> Any:
    """The SFT stage's config for the bench: the paper's LoRA (r 8, alpha 16) on one trajectory
    per step; the model is the in-memory random one (``model`` only names it)."""
    from deepmmsearch.config import load_config

    px = shapes.image_px ** 2
    return load_config(data={
        "stage": "sft", "data": str(work / "unused.jsonl"), "model": f"random:{card['name']}",
        "out": str(work / "sft"), "method": "lora", "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
        "max_steps": shapes.sft_warmup + shapes.sft_steps, "learning_rate": 1e-4, "warmup_ratio": 0.0,
        "per_device_batch_size": 1, "global_batch_size": 1,
        "precision": "fp32" if shapes.tiny else "bf16", "gradient_checkpointing": True,
        "max_length": shapes.seq_len, "min_pixels": px, "max_pixels": px,
        "device": "cpu" if device == "cpu" else "cuda", "fused_lm_head": True,
        "logging_steps": 10_000, "save_steps": 10_000_000, "save_adapter": False, "save_merged": False,
    }, expect="sft")


def sft_rows(card: dict, shapes: Shapes, processor: Any, cfg: Any, image: Path) -> list[dict]:
    """The encoded SFT rows, through the stage's own ``prepare_data``."""
    from deepmmsearch.train.sft_trainer import prepare_data

    return prepare_data(cfg, processor, sft_examples(processor, shapes, image))[0]


def part_sft(card: dict, shapes: Shapes, device: str, work: Path, image: Path, peak: dict) -> dict:
    from deepmmsearch.train.sft_trainer import build_trainer

    processor = make_processor(card, shapes)
    before = reset_memory(device)
    t0 = time.perf_counter()
    model = build_model(card, processor, shapes, device)
    sync(device)
    build_s = time.perf_counter() - t0
    params = parameter_counts(model)
    cfg = sft_config(card, shapes, device, work)
    rows = sft_rows(card, shapes, processor, cfg, image)
    tokens = len(rows[0]["input_ids"])
    trained = sum(x != -100 for x in rows[0]["labels"])
    trainer = build_trainer(cfg, model, processor, rows, [])
    trainer.args.disable_tqdm = True
    clock = StepClock(device)
    trainer.add_callback(clock.callback)
    trainer.train()
    timed = clock.times[shapes.sft_warmup:]
    step_s = statistics.mean(timed)
    grid = processor.image_processor.get_number_of_image_patches(shapes.image_px, shapes.image_px, {})
    flops = sft_model_flops(params, model.config, tokens, int(grid))
    out = {
        "build_s": build_s, "memory_before_gib": before, "attention": model.config._attn_implementation,
        "parameters": params, "tokens_per_step": tokens, "trained_tokens": trained,
        "image_tokens": int(grid) // processor.image_processor.merge_size ** 2, "steps_timed": len(timed),
        "step_s": step_s, "step_s_all": clock.times, "tokens_per_s": tokens / step_s,
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "model_tflop_per_step": flops / 1e12, "achieved_tflops": flops / step_s / 1e12,
        "mfu_vs_matmul": flops / step_s / 1e12 / peak["matmul_tflops"],
        "mfu_vs_card": flops / step_s / 1e12 / peak["card_tflops"] if peak["card_tflops"] else None,
        **peak_memory(device),
    }
    del trainer, model
    return out


# -- (b) generation --------------------------------------------------------------------------

def part_generation(card: dict, shapes: Shapes, device: str, image: Path) -> dict:
    from deepmmsearch.agent.loop import run_episodes
    from deepmmsearch.agent.state import Episode
    from deepmmsearch.agent.toolbox import Toolbox
    from deepmmsearch.config import AgentConfig, build_dataclass
    from deepmmsearch.policies.hf import HFPolicy
    from deepmmsearch.prompts import get_prompts

    processor = make_processor(card, shapes)
    before = reset_memory(device)
    model = build_model(card, processor, shapes, device)
    model.eval()
    agent = build_dataclass(AgentConfig, agent_data(shapes), "agent")
    toolbox = Toolbox.from_config(agent)
    policy = HFPolicy.from_objects(model, processor, temperature=1.0, seed=0, max_batch_size=shapes.episodes)
    script_policy(policy, shapes)
    calls: list[tuple[float, int, int]] = []  # (seconds, rows, generated tokens) per generate call
    scripted = policy._run

    def timed(batch: list) -> list:
        sync(device)
        t0 = time.perf_counter()
        gens = scripted(batch)
        sync(device)
        calls.append((time.perf_counter() - t0, len(batch), sum(g.n_tokens for g in gens)))
        return gens

    policy._run = timed
    episodes = [Episode(QUESTION, str(image), limits=agent.limits, prompts=get_prompts(agent.prompts),
                        episode_id=f"gen-{i}", gold=[GOLD]) for i in range(shapes.episodes)]
    t0 = time.perf_counter()
    trajs = asyncio.run(run_episodes(episodes, policy, toolbox, concurrency=len(episodes)))
    wall = time.perf_counter() - t0
    gen_s, tokens = sum(c[0] for c in calls), sum(c[2] for c in calls)
    out = {
        "episodes": len(trajs), "memory_before_gib": before, "wall_s": wall, "generate_calls": len(calls),
        "mean_batch_rows": statistics.mean(c[1] for c in calls), "generation_s": gen_s,
        "generated_tokens": tokens, "tokens_per_s": tokens / gen_s,
        "turns_per_episode": statistics.mean(len(t.turns) for t in trajs),
        "tool_calls_per_episode": statistics.mean(len(t.tool_calls) for t in trajs),
        "answered": sum(t.answer is not None for t in trajs),
        "stop_reasons": sorted({str(t.stop_reason) for t in trajs}),
        **peak_memory(device),
    }
    del policy, model
    return out


# -- (c) GRPO --------------------------------------------------------------------------------

def part_grpo(card: dict, shapes: Shapes, device: str, work: Path, image: Path) -> dict:
    from deepmmsearch.config import load_config
    from deepmmsearch.train.grpo_trainer import GRPORun

    samples = work / "grpo_samples.jsonl"
    samples.write_text(json.dumps({"id": "q0", "question": QUESTION, "answers": [GOLD],
                                   "image": str(image)}) + "\n", encoding="utf-8")
    cfg = load_config(data={
        "stage": "grpo", "model": f"random:{card['name']}", "dataset": {"name": "jsonl", "path": str(samples)},
        "agent": agent_data(shapes), "judge": {"name": "rule"}, "format_weight": 0.1, "method": "lora",
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0}, "temperature": 1.0, "out": str(work / "grpo"),
        "device": "cpu" if device == "cpu" else "cuda", "precision": "fp32" if shapes.tiny else "bf16",
        "save_merged": False, "rollout_log_every": 1000,
        "trl": {"num_generations": shapes.generations, "per_device_train_batch_size": shapes.generations,
                "max_steps": shapes.grpo_steps, "max_completion_length": shapes.max_completion,
                "warmup_steps": 0, "gradient_checkpointing": True, "logging_steps": 1,
                "save_strategy": "no"},
    }, expect="grpo")
    processor = make_processor(card, shapes)
    holder: dict[str, Any] = {"memory_before_gib": reset_memory(device)}

    class BenchRun(GRPORun):
        """``GRPORun`` on the in-memory random model; its rollouts follow the scripts."""

        def load_model(self) -> tuple[Any, Any, Any]:
            from peft import LoraConfig

            t0 = time.perf_counter()
            model = build_model(card, processor, shapes, device)
            sync(device)
            holder["build_s"] = time.perf_counter() - t0
            processor.tokenizer.padding_side = "left"
            lora = self.cfg.lora
            return model, processor, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                target_modules=lora.target_modules, task_type="CAUSAL_LM")

        def make_policy(self, model: Any, processor: Any) -> Any:
            policy = super().make_policy(model, processor)
            script_policy(policy, shapes)
            return policy

    run = BenchRun(cfg)
    run.run()
    rows = run.history[1:] or run.history
    mean = {p: statistics.mean(r[f"time/{p}"] for r in rows) for p in GRPO_PARTS}
    return {
        "build_s": holder["build_s"], "memory_before_gib": holder["memory_before_gib"],
        "steps": len(run.history), "steps_timed": len(rows),
        "generations": shapes.generations, **mean,
        "shares": {p: mean[p] / mean["step_s"] for p in GRPO_PARTS if p != "step_s"},
        "turns_per_episode": statistics.mean(r["rollout/turns"] for r in rows),
        "tool_calls_per_episode": statistics.mean(r["rollout/tool_calls"] for r in rows),
        "model_tokens_per_episode": statistics.mean(r["completions/mean_length"] for r in rows),
        "injected_tokens_per_episode": statistics.mean(r["rollout/injected_tokens"] for r in rows),
        "reward": statistics.mean(r["reward"] for r in rows),
        **peak_memory(device),
    }


# -- report ----------------------------------------------------------------------------------

def table(res: dict[str, Any]) -> str:
    s, g, r = res.get("sft"), res.get("generation"), res.get("grpo")
    lines = [f"{res['model']} ({res['mode']}), {res['device']}, torch {res['torch']}, transformers "
             + res["transformers"],
             f"matmul {res['matmul_n']}^3: {res['matmul_tflops']:.1f} TFLOP/s"
             + (f" (card reference {res['card_tflops']:.0f})" if res["card_tflops"] else ""),
             "| part | measure | value |", "|---|---|---|"]

    def row(part: str, what: str, value: str) -> None:
        lines.append(f"| {part} | {what} | {value} |")

    if s:
        row("sft", "tokens / step (trained)", f"{s['tokens_per_step']} ({s['trained_tokens']}), "
            f"{s['image_tokens']} image tokens")
        row("sft", "s / step (mean of timed)", f"{s['step_s']:.3f} ({s['steps_timed']} steps)")
        row("sft", "tokens / s", f"{s['tokens_per_s']:.0f}")
        row("sft", "model TFLOP/s; MFU vs matmul, vs card", f"{s['achieved_tflops']:.1f}; "
            f"{s['mfu_vs_matmul']:.1%}, " + (f"{s['mfu_vs_card']:.1%}" if s["mfu_vs_card"] else "n/a"))
        row("sft", "peak memory GiB", f"{s['peak_memory_gib']:.1f}")
    if g:
        row("generation", f"{g['episodes']} episodes: turns, tool calls / episode",
            f"{g['turns_per_episode']:.1f}, {g['tool_calls_per_episode']:.1f}")
        row("generation", "generated tokens / s (batch rows)",
            f"{g['tokens_per_s']:.1f} ({g['generated_tokens']} tokens, {g['mean_batch_rows']:.1f} rows)")
        row("generation", "wall s; peak memory GiB", f"{g['wall_s']:.1f}; {g['peak_memory_gib']:.1f}")
    if r:
        for p in GRPO_PARTS:
            share = f" ({r['shares'][p]:.0%})" if p in r["shares"] else ""
            row("grpo", f"{p} (mean of {r['steps_timed']})", f"{r[p]:.2f}{share}")
        row("grpo", "model + injected tokens / episode",
            f"{r['model_tokens_per_episode']:.0f} + {r['injected_tokens_per_episode']:.0f}")
        row("grpo", "peak memory GiB", f"{r['peak_memory_gib']:.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="qwen2.5-vl-7b", choices=sorted(MODELS))
    p.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU (the test)")
    p.add_argument("--parts", default="sft,generation,grpo", help="comma-separated subset")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help=f"the card's bf16 reference (default: {H200_BF16_TFLOPS} on an H200, else none)")
    p.add_argument("--seq-len", type=int, help="override the SFT tokens per step")
    p.add_argument("--reason-tokens", type=int, help="override the scripted reasoning per turn")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch
    import transformers

    if not a.tiny and a.device is None and not torch.cuda.is_available():
        # bench/run_all.py (`make bench`) runs every bench without arguments on the CPU box
        print("no GPU visible: running --tiny (tiny shapes on the CPU; --device cuda insists on a GPU)")
        a.tiny = True
    shapes = TINY if a.tiny else PAPER
    shapes = shapes._replace(**{k: v for k, v in (("seq_len", a.seq_len), ("reason_tokens", a.reason_tokens))
                                if v is not None})
    device = a.device or ("cpu" if a.tiny else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no GPU visible: run with --tiny on a CPU")
    parts = [x for x in a.parts.split(",") if x]
    if unknown := set(parts) - {"sft", "generation", "grpo"}:
        raise SystemExit(f"unknown parts {sorted(unknown)}")
    card = load_card(a.model)
    name = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu"
    card_peak = a.peak_tflops if a.peak_tflops is not None else (
        H200_BF16_TFLOPS if "H200" in name else None)
    if a.tiny:
        torch.set_num_threads(1)
    t0 = time.perf_counter()
    res: dict[str, Any] = {
        "model": card["name"], "hub_id": card["hub_id"], "model_class": FAMILIES[card["family"]],
        "mode": "tiny" if a.tiny else "paper",
        "device": name, "torch": torch.__version__, "transformers": transformers.__version__,
        "python": sys.version.split()[0], "shapes": shapes._asdict(), "matmul_n": shapes.matmul_n,
        "matmul_tflops": matmul_tflops(device, shapes.matmul_n, a.tiny), "card_tflops": card_peak,
    }
    peak = {"matmul_tflops": res["matmul_tflops"], "card_tflops": card_peak}
    failed = []
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        work = Path(tmp)
        image = write_image(work, shapes.image_px)
        runs = {"generation": lambda: part_generation(card, shapes, device, image),
                "sft": lambda: part_sft(card, shapes, device, work, image, peak),
                "grpo": lambda: part_grpo(card, shapes, device, work, image)}
        for part in ("generation", "sft", "grpo"):  # generation first: no trainer has touched the model
            if part not in parts:
                continue
            try:
                res[part] = runs[part]()
            except Exception as exc:  # keep the other parts' numbers, report this one
                log.exception("part %s failed", part)
                res[part + "_error"] = f"{type(exc).__name__}: {exc}"[:2000]
                failed.append(part)
            res["wall_s"] = time.perf_counter() - t0
            write(res, a.out)  # after every part: a later failure or the time limit keeps it
    print(table(res))
    if failed:
        print(f"FAILED parts: {', '.join(failed)} (see *_error in the JSON)")
    return 1 if failed else 0


def write(res: dict[str, Any], out: Path | None) -> None:
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2), encoding="utf-8")
    log.info("wrote %s", out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
