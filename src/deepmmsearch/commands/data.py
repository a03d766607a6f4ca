"""``deepmmsearch data``: load benchmark files, export RL datasets, score predictions officially.

    deepmmsearch data load okvqa path=OpenEnded_mscoco_val2014_questions.json image_root=coco/val2014 \\
        limit=500 --out okvqa_500.jsonl --write-ids okvqa_500.ids
    deepmmsearch data export fvqa path=fvqa_train.parquet --format verl --out fvqa_verl.parquet
    deepmmsearch data export simweb ... --format trl --out simweb_trl.parquet
    deepmmsearch data score infoseek path=infoseek_val.jsonl qtype=... --predictions preds.jsonl

Dataset options are ``key=value`` (values parsed as YAML: ``limit=2000``, ``question_types=[a, b]``;
``null``, ``None`` and ``~`` all mean "no value", e.g. ``language=None`` keeps every language);
``deepmmsearch ls`` lists the dataset names. ``data score`` needs no images: unless told
otherwise it keeps samples whose image is missing, and it exits with an error when no prediction
could be scored. A predictions file is JSONL with ``id`` and
``prediction`` (or ``answer``, as in trajectory files).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from typing import Any

from deepmmsearch import jsontext


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in (("load", "load a benchmark and report what was read"),
                            ("export", "write a TRL or veRL dataset from a benchmark"),
                            ("score", "official scoring of a predictions file")):
        q = sub.add_parser(name, help=help_text, description=help_text)
        q.add_argument("dataset", help="dataset name (infoseek, evqa, okvqa, fvqa, ...)")
        q.add_argument("options", nargs="*", default=[], help="loader options key=value")
        q.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "load":
            q.add_argument("--out", help="write the samples as JSONL (reload with the jsonl loader)")
            q.add_argument("--write-ids", help="write the chosen ids, one a line")
            q.add_argument("--show", type=int, default=3, help="print this many samples")
        if name == "export":
            q.add_argument("--format", choices=("trl", "verl"), required=True)
            q.add_argument("--out", required=True, help="output parquet file")
            q.add_argument("--prompts", default="paper", help="prompt set (paper | compact)")
            q.add_argument("--prompt-style", default="agent", choices=("agent", "question"))
            q.add_argument("--images", choices=("path", "bytes"), default=None,
                           help="store image paths or bytes (default: trl path, verl bytes)")
            q.add_argument("--agent-name", default="deepmmsearch_agent",
                           help="veRL agent loop (deepmmsearch_agent, or tool_agent: veRL's own)")
        if name == "score":
            q.add_argument("--predictions", required=True, help="JSONL with id + prediction")


def parse_options(items: list[str]) -> dict[str, Any]:
    from deepmmsearch.config import parse_yaml
    from deepmmsearch.registry import ConfigError

    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"dataset option {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        out[key.strip()] = None if raw.strip() in NULLS else parse_yaml(raw) if raw else ""
    return out


NULLS = ("null", "Null", "NULL", "None", "none", "~")


def _load(args: argparse.Namespace):
    from deepmmsearch.data.benchmarks.base import DatasetError
    from deepmmsearch.registry import DATASET, ConfigError

    options = parse_options(args.options)
    if args.action == "score":  # scoring reads no pixels: keep samples whose image is missing
        params = inspect.signature(DATASET.resolve(args.dataset)).parameters
        for key, value in (("missing_image", "keep"), ("check_images", False)):
            if key in params:
                options.setdefault(key, value)
    try:
        return DATASET.build({"name": args.dataset, **options})
    except DatasetError as exc:
        raise ConfigError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    data = _load(args)
    if args.action == "load":
        return _run_load(args, data)
    if args.action == "export":
        return _run_export(args, data)
    return _run_score(args, data)


def _run_load(args: argparse.Namespace, data) -> int:
    if args.out:
        data.write_jsonl(args.out)
    if args.write_ids:
        data.write_ids(args.write_ids)
    if args.json:
        print(jsontext.dumps(data.report.to_dict(), indent=2))
        return 0
    print(data.report.summary())
    for msg in data.report.problems[:10]:
        print(f"  ! {msg}")
    for s in data.samples[: max(0, args.show)]:
        print(f"  [{s.id}] {s.question}  -> {' | '.join(s.answers[:5])}  ({s.image})")
    return 0


def _run_export(args: argparse.Namespace, data) -> int:
    from deepmmsearch.data.export import write_trl, write_verl

    if args.format == "trl":
        path = write_trl(data.samples, args.out, prompts=args.prompts,
                         prompt_style=args.prompt_style, images=args.images or "path")
    else:
        path = write_verl(data.samples, args.out, prompts=args.prompts,
                          prompt_style=args.prompt_style, agent_name=args.agent_name,
                          images=args.images or "bytes")
    print(jsontext.dumps({"path": path, "rows": len(data)}) if args.json
          else f"wrote {len(data)} rows to {path} ({args.format})")
    return 0


def _nothing_scored(data, preds: dict, summary: dict) -> str:
    if not data.samples:
        return f"no samples to score: {data.report.summary()}"
    if not preds:
        return "the predictions file holds no usable rows (JSONL with id and prediction)"
    if all(s.id not in preds for s in data.samples):
        return (f"none of the {len(preds)} prediction ids matches a sample id "
                f"(e.g. {next(iter(preds))!r} vs {data.samples[0].id!r})")
    return f"{data.name} has no official rule: score it with the judge (deepmmsearch eval)"


def _run_score(args: argparse.Namespace, data) -> int:
    from deepmmsearch.data.scoring import official_summary
    from deepmmsearch.registry import ConfigError

    preds: dict[str, str | None] = {}
    with open(args.predictions, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                preds[str(row["id"])] = row.get("prediction", row.get("answer"))
            except (ValueError, KeyError, TypeError):
                print(f"{args.predictions}:{n}: skipped (needs JSON with id)", file=sys.stderr)
    summary = official_summary(data.samples, preds)
    missing = sum(s.id not in preds for s in data.samples)
    summary["_missing_predictions"] = missing
    scored = sum(v.get("n", 0) for k, v in summary.items() if not k.startswith("_"))
    if not scored:
        raise ConfigError(_nothing_scored(data, preds, summary))
    if args.json:
        print(jsontext.dumps(summary, indent=2))
        return 0
    for src, v in summary.items():
        if src.startswith("_"):
            continue
        if "accuracy" in v:
            line = f"{src}: {v['accuracy']:.2f}% official (n={v['n']})"
            if "harmonic_mean" in v:
                line += f"; splits {v['splits']}, harmonic mean {v['harmonic_mean']:.2f}"
            print(line)
        else:
            print(f"{src}: no official rule (use the judge)")
    if missing:
        print(f"{missing} samples have no prediction (not scored)")
    return 0
