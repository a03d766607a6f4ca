"""Where a GRPO step's time goes: generation, tools, judge, optimisation (tiny model, SimWeb tools).

The run is ``configs/grpo/tiny_cpu.yaml`` — multi-turn episodes with the real local SimWeb tools
(BM25 text index, local image index, the world's annotation grounder, extractive summaries) and
the rule judge — on a tiny Qwen2.5-VL SFT-trained from scratch on SimWeb expert trajectories so
that it calls tools. The split comes from the run's own ``metrics.jsonl`` rows
(``deepmmsearch.train.grpo_metrics``: wall-clock seconds; tools that run while a generation batch
runs are counted in ``tools_s`` but not in ``tools_exposed_s``). The first step is a warm-up and is
left out of the means.

Baseline, same process, same model and prompts: TRL's own single-turn GRPO step (no
``rollout_func``, no tools; TRL generates ``max_completion_length`` tokens = our episodes' mean
completion length), to show what the multi-turn rollout costs on top of a plain step.

Run (builds a 150-entity world and a quick SFT model in a temporary folder unless given)::

    nice -n 10 .venv/bin/python bench/bench_grpo.py [--world DIR --model DIR] [--steps 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
logging.getLogger("transformers").setLevel(logging.ERROR)
log = logging.getLogger("bench_grpo")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "grpo" / "tiny_cpu.yaml"
PARTS = ("generation_s", "tools_s", "tools_exposed_s", "rollout_other_s", "judge_s",
         "optimisation_s", "step_s")


def world_overrides(world: Path) -> list[str]:
    return [f"dataset.path={world}", f"agent.text_search.index={world}/index/text",
            f"agent.image_search.index={world}/index/image", f"agent.grounder.world={world}"]


def build_world(folder: Path, entities: int) -> Path:
    from deepmmsearch.cli import main as cli

    if cli(["simweb", "build", "--out", str(folder), "--size", "small", "--entities", str(entities),
            "--overwrite"]) != 0:
        raise RuntimeError("simweb build failed")
    return folder


def distill(world: Path, out: Path) -> Path:
    """The expert teacher on every training question, same tools and prompts as the GRPO run."""
    from deepmmsearch.agent.loop import run_episodes
    from deepmmsearch.agent.runtime import build_agent
    from deepmmsearch.config import AgentConfig, build_dataclass, load_config, to_plain
    from deepmmsearch.registry import DATASET
    from deepmmsearch.reward.judge import RuleJudge

    cfg = load_config(CONFIG, world_overrides(world), expect="grpo")
    agent_data = to_plain(cfg.agent)
    agent_data["policy"] = {"name": "simweb-expert", "world": str(world)}
    agent = build_agent(build_dataclass(AgentConfig, agent_data, "agent"))
    samples = [s for s in DATASET.build({"name": "simweb", "path": str(world), "split": "train"})]
    eps = [agent.episode(s.question, s.image, episode_id=s.id, gold=s.answers,
                         metadata={**s.metadata, "id": s.id}) for s in samples]
    trajs = asyncio.run(run_episodes(eps, agent.policy, agent.toolbox, concurrency=32))
    judge = RuleJudge()
    good = [t for t in trajs if t.answer and judge.decide(t.answer, t.gold).correct]
    out.write_text("".join(json.dumps({"trajectory": t.to_dict()}) + "\n" for t in good), encoding="utf-8")
    log.info("distilled %d/%d correct trajectories", len(good), len(trajs))
    return out


def quick_sft(data: Path, out: Path, steps: int) -> Path:
    from deepmmsearch.config import load_config
    from deepmmsearch.train.sft import run_sft

    cfg = load_config(data={
        "stage": "sft", "data": str(data), "out": str(out), "method": "full",
        "tiny": {"vocab_size": 600, "min_pixels": 3136, "max_pixels": 12544},
        "max_steps": steps, "learning_rate": 5e-3, "warmup_ratio": 0.05, "per_device_batch_size": 16,
        "global_batch_size": 16, "precision": "fp32", "device": "cpu", "torch_threads": 1,
        "save_adapter": False, "logging_steps": 50, "save_steps": 100000}, expect="sft")
    return Path(run_sft(cfg).model_dir)


def ours(world: Path, model: Path, out: Path, steps: int, prompts: int) -> list[dict]:
    from deepmmsearch.config import load_config
    from deepmmsearch.train.grpo_trainer import GRPORun

    cfg = load_config(CONFIG, world_overrides(world) + [
        f"model={model}", f"out={out}", f"trl.max_steps={steps}",
        f"trl.per_device_train_batch_size={8 * prompts}", "save_merged=false", "rollout_log_every=1000"],
        expect="grpo")
    run = GRPORun(cfg)
    run.run()
    return run.history


class _StepClock:
    def __init__(self) -> None:
        self.times: list[float] = []

    def callback(self):  # a TrainerCallback recording each optimizer step's wall time
        from transformers import TrainerCallback

        clock = self

        class Clock(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                clock.t0 = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                clock.times.append(time.perf_counter() - clock.t0)

        return Clock()


def bare_trl(world: Path, model: Path, out: Path, steps: int, prompts: int, length: int) -> list[float]:
    """TRL's own single-turn GRPO step on the same model and prompts (baseline)."""
    from trl import GRPOConfig, GRPOTrainer

    from deepmmsearch.config import load_config
    from deepmmsearch.models.loading import load_model_and_processor
    from deepmmsearch.train.grpo_trainer import GRPORun

    cfg = load_config(CONFIG, world_overrides(world) + [f"model={model}", f"out={out}"], expect="grpo")
    run = GRPORun(cfg)
    dataset = run.build_dataset(run.load_samples())
    mdl, processor = load_model_and_processor(model, device="cpu", dtype="float32")
    processor.tokenizer.padding_side = "left"
    args = GRPOConfig(output_dir=str(out), use_cpu=True, bf16=False, gradient_checkpointing=False,
                      num_generations=8, per_device_train_batch_size=8 * prompts, max_steps=steps,
                      max_completion_length=length, learning_rate=2e-4, beta=0.0, loss_type="grpo",
                      scale_rewards="none", temperature=cfg.temperature, logging_steps=1,
                      save_strategy="no", report_to="none", seed=0)
    clock = _StepClock()

    def zero(completions, **kw):
        return [0.0] * len(completions)

    trainer = GRPOTrainer(model=mdl, reward_funcs=[zero], args=args, train_dataset=dataset,
                          processing_class=processor, callbacks=[clock.callback()])
    trainer.train()
    return clock.times


def _mean(rows: list[dict], key: str) -> float:
    return statistics.mean(r[key] for r in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world", type=Path, help="a built SimWeb world (default: build 150 entities)")
    p.add_argument("--model", type=Path, help="a tiny SFT model dir (default: a quick SFT)")
    p.add_argument("--steps", type=int, default=4, help="GRPO steps per arm (the first is a warm-up)")
    p.add_argument("--prompts", type=int, default=2, help="prompts per step (× 8 generations)")
    p.add_argument("--sft-steps", type=int, default=200)
    a = p.parse_args(argv if argv is not None else [])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench-grpo-") as tmp:
        tmp_p = Path(tmp)
        t0 = time.perf_counter()
        world = a.world or build_world(tmp_p / "world", 150)
        model = a.model or quick_sft(distill(world, tmp_p / "sft.jsonl"), tmp_p / "sft", a.sft_steps)
        print(f"setup (world, distillation, SFT): {time.perf_counter() - t0:.1f}s")
        rows = ours(world, model, tmp_p / "grpo", a.steps, a.prompts)[1:]
        length = round(_mean(rows, "completions/mean_length") + _mean(rows, "rollout/injected_tokens"))
        bare = bare_trl(world, model, tmp_p / "bare", a.steps, a.prompts, max(8, length))[1:]
    episodes = 8 * a.prompts
    step = _mean(rows, "time/step_s")
    print(f"\nGRPO step, {episodes} episodes (tiny model, SimWeb tools), mean of {len(rows)} steps after a warm-up:")
    print(f"{'part':<18}{'seconds':>9}{'share':>8}")
    for part in PARTS:
        v = _mean(rows, f"time/{part}")
        print(f"{part:<18}{v:>9.3f}{v / step:>8.1%}")
    print(f"per episode: {_mean(rows, 'rollout/turns'):.2f} turns, "
          f"{_mean(rows, 'rollout/tool_calls'):.2f} tool calls, "
          f"{_mean(rows, 'completions/mean_length'):.0f} model + "
          f"{_mean(rows, 'rollout/injected_tokens'):.0f} injected tokens, "
          f"reward {_mean(rows, 'reward'):.3f}")
    bare_s = statistics.mean(bare)
    print(f"baseline: TRL single-turn GRPO step, {episodes} completions of {max(8, length)} tokens, no tools: "
          f"{bare_s:.3f}s; ours / baseline = {step / bare_s:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
