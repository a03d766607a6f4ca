"""``deepmmsearch ask --config CFG --image IMG "QUESTION" [--json]``"""

from __future__ import annotations

import argparse
import asyncio
import sys

from deepmmsearch import jsontext
from deepmmsearch.errors import UsageError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("question")
    p.add_argument("--config", "-c", required=True, help="an agent config (stage: agent)")
    p.add_argument("--image", "-i", help="path of the image the question is about")
    p.add_argument("--json", action="store_true", help="print the trajectory as JSON")
    p.add_argument("--out", help="append the trajectory to this JSONL file")
    p.add_argument("overrides", nargs="*", default=[], help="config overrides a.b=c")


def print_event(event, stream=None) -> None:
    stream = stream or sys.stdout  # looked up per call: tests and servers swap sys.stdout
    d = event.data
    if event.kind == "turn":
        print(f"\n[turn {d['index']}] model:", file=stream)
        print("  " + d["model_text"].replace("\n", "\n  "), file=stream)
        if d["action"]["kind"] == "invalid":
            print(f"  (invalid: {d['action']['error']})", file=stream)
    elif event.kind == "observation" and d.get("observation"):
        call = d.get("tool_call")
        if call:
            where = "whole image" if call["whole_image"] else (call["box"] and f"box {call['box']}")
            extra = f" [{where}]" if call["kind"] == "image_search" else f" [{call['query']}]"
            hit = " (cache)" if call["cache_hit"] else ""
            print(f"[tool] {call['kind']} via {call['backend']}{extra}: {len(call['hits'])} hits, "
                  f"{call['latency_s'] * 1000:.0f} ms{hit}" + (f", error: {call['error']}" if call["error"] else ""),
                  file=stream)
        print("  " + d["observation"].replace("\n", "\n  "), file=stream)
    elif event.kind == "done":
        print(f"\nanswer: {d['answer']}  (stop: {d['stop_reason']})", file=stream)
        for url in d["sources"]:
            print(f"  source: {url}", file=stream)


def check_image(path: str) -> None:
    """UsageError unless ``path`` is a readable image file."""
    from pathlib import Path

    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise UsageError(f"image not found: {p}")
    if not p.is_file():
        raise UsageError(f"{p} is not an image file (it is a directory or a device)")
    try:
        with Image.open(p) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UsageError(f"cannot read the image {p}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from deepmmsearch.agent.loop import run_episode
    from deepmmsearch.agent.runtime import build_agent
    from deepmmsearch.config import load_config

    if not args.question.strip():
        raise UsageError("the question is empty: ask something, e.g. ask -c CFG \"What is this?\"")
    if args.image is not None:
        check_image(args.image)
    cfg = load_config(args.config, args.overrides, expect="agent")
    agent = build_agent(cfg.agent)
    ep = agent.episode(args.question, args.image)
    hook = None if args.json else print_event
    traj = asyncio.run(run_episode(ep, agent.policy, agent.toolbox, on_event=hook))
    if args.json:
        print(jsontext.dumps(traj.to_dict(), indent=2))
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(traj.to_json() + "\n")
    return 0
