"""``deepmmsearch index text|image``: build a local search index.

    deepmmsearch index text CORPUS.jsonl --out DIR [--engine tantivy|bm25s] [--overwrite]
    deepmmsearch index image DIR_OR_JSONL --out DIR [--embedder grid|effnet-lite0] [--index-type auto]

Text corpora are JSONL rows ``{id, title, text, url, date?}``; image sources are a folder of
pictures or a JSONL of image pages (see :mod:`deepmmsearch.tools.image.local`). Progress is shown
on stderr; ``--json`` prints the index description as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from deepmmsearch import jsontext


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    t = sub.add_parser("text", help="BM25 index over a JSONL corpus",
                       description="Build a BM25 index over a JSONL corpus (id, title, text, url, date).")
    t.add_argument("corpus", help="JSONL corpus file")
    t.add_argument("--out", "-o", required=True, help="index folder to write")
    t.add_argument("--engine", choices=["tantivy", "bm25s"], default="tantivy",
                   help="tantivy (default: bounded memory, fast build) or bm25s (in-RAM matrix)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing index at --out")
    _common(t)
    i = sub.add_parser("image", aliases=["images"], help="embedding index over images",
                       description="Build a local image index from a folder or a JSONL of image pages.")
    i.add_argument("source", help="image folder or JSONL of image pages")
    i.add_argument("--out", "-o", required=True, help="index folder to write")
    i.add_argument("--embedder", default=None, help="grid (default), effnet-lite0, or a JSON spec")
    i.add_argument("--index-type", default="auto", help="auto | flat | hnsw")
    i.add_argument("--batch-size", type=int, default=256)
    _common(i)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the index description as JSON")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _as_dict(info: Any) -> dict[str, Any]:
    if hasattr(info, "to_dict"):
        return info.to_dict()
    if dataclasses.is_dataclass(info):
        return dataclasses.asdict(info)
    return dict(vars(info))


def run(args: argparse.Namespace) -> int:
    if args.kind == "text":
        from deepmmsearch.tools.text.bm25 import build_index

        info = build_index(args.corpus, args.out, engine=args.engine, allow_empty=False,
                           show_progress=not args.no_progress, overwrite=args.overwrite)
        summary = (f"indexed {info.n_docs} documents with {info.engine} in {info.build_s:.1f}s "
                   f"-> {info.path} ({info.size_bytes / 1e6:.1f} MB)")
    else:
        info = _build_image(args)
        d = _as_dict(info)
        summary = (f"indexed {d.get('count', '?')} images in {d.get('build_s', 0):.1f}s -> "
                   f"{d.get('path', args.out)}"
                   + (f" ({len(d['skipped'])} skipped)" if d.get("skipped") else ""))
    if args.json:
        print(jsontext.dumps(_as_dict(info), indent=2))
    else:
        print(summary)
    return 0


def _build_image(args: argparse.Namespace) -> Any:
    from deepmmsearch.registry import ConfigError

    try:
        from deepmmsearch.tools.image.local import build_index
    except ImportError as exc:
        raise ConfigError(f"the local image index is not available in this build ({exc})") from None
    embedder: Any = args.embedder
    if embedder and embedder.lstrip().startswith("{"):
        try:
            embedder = json.loads(embedder)
        except ValueError as exc:
            raise ConfigError(f"--embedder: invalid JSON ({exc})") from None
    opts: dict[str, Any] = {"index_type": args.index_type, "batch_size": args.batch_size,
                            "progress": not args.no_progress}
    if embedder:
        opts["embedder"] = embedder
    print(f"indexing images from {args.source} ...", file=sys.stderr)
    return build_index(args.source, args.out, **opts)
