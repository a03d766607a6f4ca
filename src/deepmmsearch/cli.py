"""``deepmmsearch`` — one command, many subcommands. Each lives in ``deepmmsearch/commands/`` and
exposes ``configure(parser)`` and ``run(args) -> int``; heavy imports happen inside ``run``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "ask": ("deepmmsearch.commands.ask", "answer a question about an image with the search agent"),
    "validate": ("deepmmsearch.commands.validate", "check a config file without running anything"),
    "ls": ("deepmmsearch.commands.ls", "list the backends of every role"),
    "index": ("deepmmsearch.commands.index", "build a local text or image index"),
    "search": ("deepmmsearch.commands.search", "query a local text or image index"),
    "simweb": ("deepmmsearch.commands.simweb", "build the offline simulated web"),
    "data": ("deepmmsearch.commands.data", "load benchmark files and export datasets"),
    "distill": ("deepmmsearch.commands.distill", "distil SFT trajectories from a teacher"),
    "sft": ("deepmmsearch.commands.sft", "supervised fine-tuning (LoRA) on distilled trajectories"),
    "grpo": ("deepmmsearch.commands.grpo", "GRPO with multi-turn tool rollouts (TRL)"),
    "eval": ("deepmmsearch.commands.eval", "evaluate workflows on benchmarks with a judge"),
    "report": ("deepmmsearch.commands.report", "tables and figures from evaluation runs"),
    "serve": ("deepmmsearch.commands.serve", "web page + OpenAI-compatible API for the agent"),
    "quickstart": ("deepmmsearch.commands.quickstart", "train a tiny agent on SimWeb on a CPU"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepmmsearch", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            try:
                importlib.import_module(module).configure(p)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                p.set_defaults(_missing=module)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = next((a for a in argv if a in COMMANDS), None)
    parser = build_parser(only)
    args, extra = parser.parse_known_args(argv)
    # argparse gives positionals one chance: `ask -c CFG "Q" --json a.b=c` leaves `a.b=c` over
    if (extra and isinstance(getattr(args, "overrides", None), list)
            and all("=" in e and not e.startswith("-") for e in extra)):
        args.overrides.extend(extra)
        extra = []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore", "urllib3", "filelock", "faiss", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if getattr(args, "_missing", None):
        parser.error(f"command {args.command!r} is not available in this build")
    for stream in (sys.stdout, sys.stderr):  # text from the web may hold unprintable characters
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    from deepmmsearch.errors import UsageError
    from deepmmsearch.registry import ConfigError

    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        if args.verbose:
            raise
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except Exception as exc:  # a user error of a kind the commands raise on bad input
        if args.verbose or not _is_input_error(exc):
            raise
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _is_input_error(exc: BaseException) -> bool:
    """Errors that mean "your input is wrong" (dataset files, a busy run directory)."""
    from deepmmsearch.data.benchmarks.base import DatasetError
    from deepmmsearch.eval.store import RunDirBusy

    return isinstance(exc, (DatasetError, RunDirBusy))


if __name__ == "__main__":
    sys.exit(main())
