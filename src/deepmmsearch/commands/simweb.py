"""``deepmmsearch simweb build|info`` — the offline simulated web.

    deepmmsearch simweb build --seed 0 --out runs/simweb [--size small|medium|large] [--entities N]
    deepmmsearch simweb info runs/simweb [--json]

``build`` writes entities, pictures, scenes, questions (train/val/test with held-out entities),
the text corpus and the image pages, then indexes them with the same backends as
``deepmmsearch index text|image`` (skip with ``--no-index``; index later with
``deepmmsearch simweb index DIR``). Then ask it questions:

    deepmmsearch ask -c configs/simweb_expert.yaml --image runs/simweb/images/scenes/s000000.png \\
        "$(head -1 runs/simweb/questions.jsonl | jq -r .question)"
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="simweb_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="build a world (deterministic for a seed)")
    b.add_argument("--out", required=True, help="the world's folder")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--size", choices=("small", "medium", "large"), default="small")
    b.add_argument("--entities", type=int, help="override the number of entities of the size")
    b.add_argument(
        "--rounds", type=int, help="questions per entity (each in a freshly drawn scene; default 1)"
    )
    b.add_argument("--jobs", type=int, help="worker processes for drawing (default: up to 2)")
    b.add_argument("--no-index", action="store_true", help="skip the text and image indexes")
    b.add_argument("--overwrite", action="store_true", help="replace an existing world")
    b.add_argument("--json", action="store_true", help="print the manifest as JSON")
    i = sub.add_parser("index", help="(re)build the indexes of a built world")
    i.add_argument("world")
    s = sub.add_parser("info", help="describe a built world")
    s.add_argument("world")
    s.add_argument("--json", action="store_true")


def _describe(manifest: dict, out=sys.stdout) -> None:
    c = manifest["counts"]
    print(f"SimWeb world: seed {manifest['seed']}, size {manifest['size']}", file=out)
    print("  entities: " + ", ".join(f"{k} {v}" for k, v in c["entities"].items()), file=out)
    print(
        f"  scenes: {sum(c['scenes'].values())}; text pages: {c['pages']}; "
        f"image pages: {c['image_pages']}",
        file=out,
    )
    for split, by_type in c["questions"].items():
        total = sum(by_type.values())
        parts = ", ".join(f"{t} {n}" for t, n in by_type.items())
        print(f"  {split} questions: {total} ({parts})", file=out)


def run(args: argparse.Namespace) -> int:
    from deepmmsearch.simweb.build import build_indexes, build_world
    from deepmmsearch.simweb.world import World, WorldError

    if args.simweb_command == "build":
        t0 = time.perf_counter()
        try:
            manifest = build_world(
                args.out,
                seed=args.seed,
                size=args.size,
                entities=args.entities,
                rounds=args.rounds,
                indexes=not args.no_index,
                overwrite=args.overwrite,
                jobs=args.jobs,
                progress=sys.stderr.isatty(),
            )
        except (FileExistsError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(manifest, indent=2))
        else:
            _describe(manifest)
            print(f"built in {time.perf_counter() - t0:.1f}s -> {args.out}")
        return 0
    try:
        world = World.load(args.world)
    except WorldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.simweb_command == "index":
        build_indexes(world.root, progress=sys.stderr.isatty())
        return 0
    if args.json:
        print(json.dumps(world.manifest, indent=2))
    else:
        _describe(world.manifest)
    return 0
