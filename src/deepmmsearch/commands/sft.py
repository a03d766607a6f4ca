"""``deepmmsearch sft --config CFG [a.b=c ...] [--json]``: supervised fine-tuning (see train/sft.py).

Several GPUs: ``accelerate launch --config_file configs/accelerate/multi_gpu.yaml -m deepmmsearch
sft -c CFG`` (or ``deepspeed_zero2.yaml`` / ``deepspeed_zero3.yaml``).
"""

from __future__ import annotations

import argparse
import json


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="an SFT config (stage: sft)")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.add_argument("overrides", nargs="*", default=[], help="config overrides a.b=c")


def run(args: argparse.Namespace) -> int:
    from deepmmsearch.config import load_config
    from deepmmsearch.train.sft import is_main_process, run_sft

    cfg = load_config(args.config, args.overrides, expect="sft")
    result = run_sft(cfg)
    if not is_main_process():
        return 0
    if args.json:
        print(json.dumps(result.summary, indent=2))
    else:
        s = result.summary
        print(f"SFT: {s['steps']} steps on {s['examples']} examples, train loss {s['train_loss']:.4f}, "
              f"{s['wall_s']:.1f} s")
        if result.model_dir:
            print(f"model:   {result.model_dir}   (policy: {{name: hf, model: {result.model_dir}}})")
        if result.adapter_dir:
            print(f"adapter: {result.adapter_dir}")
        print(f"log:     {result.out / 'train_log.jsonl'}")
    return 0
