"""``deepmmsearch search text|image``: query a local index.

    deepmmsearch search text "great egret wingspan" --index DIR -k 5 [--json]
    deepmmsearch search image PHOTO.jpg --index DIR -k 5 [--crop "the white bird" --grounder NAME]
                                                    [--box x1,y1,x2,y2] [--rerank orb] [--json]

Text search uses the ``bm25`` backend (the engine is read from the index). Image search uses the
``local`` backend; ``--crop`` grounds a referring expression with a grounder from the registry
(options with ``--grounder-option key=value``) and searches the crop, ``--box`` crops a given box.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from deepmmsearch import jsontext


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    t = sub.add_parser("text", help="query a BM25 text index",
                       description="Query a text index built by `deepmmsearch index text`.")
    t.add_argument("query")
    t.add_argument("--index", required=True, help="index folder")
    t.add_argument("--snippet-chars", type=int, default=300)
    _common(t)
    i = sub.add_parser("image", aliases=["images"], help="query a local image index",
                       description="Query an image index built by `deepmmsearch index image`.")
    i.add_argument("image", help="query picture")
    i.add_argument("--index", required=True, help="index folder")
    i.add_argument("--crop", "--expr", dest="crop", metavar="EXPRESSION",
                   help="ground this referring expression, search the crop")
    i.add_argument("--grounder", default="fixed", help="grounder backend for --crop (see `deepmmsearch ls`)")
    i.add_argument("--grounder-option", action="append", default=[], metavar="KEY=VALUE")
    i.add_argument("--box", help="search this box of the picture: x1,y1,x2,y2 in pixels")
    i.add_argument("--windows", default="center", help="none | center | grid")
    i.add_argument("--rerank", default="none", help="none | orb | sift")
    _common(i)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-k", type=int, default=5, help="number of hits (default 5)")
    p.add_argument("--json", action="store_true", help="print the hits as JSON")


def run(args: argparse.Namespace) -> int:
    from deepmmsearch.errors import UsageError

    if args.k < 1:
        raise UsageError(f"-k must be at least 1, got {args.k}")
    if getattr(args, "snippet_chars", 1) < 1:
        raise UsageError(f"--snippet-chars must be at least 1, got {args.snippet_chars}")
    from deepmmsearch.tools.base import ToolError

    t0 = time.perf_counter()
    try:
        if args.kind == "text":
            from deepmmsearch.tools.text.bm25 import BM25TextSearch

            backend = BM25TextSearch(args.index, snippet_chars=args.snippet_chars, threaded=False)
            t0 = time.perf_counter()
            hits, extra = backend.search_sync(args.query, args.k), {"query": args.query}
        else:
            hits, extra = _search_image(args)
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ms = (time.perf_counter() - t0) * 1000
    if args.json:
        out = {**extra, "index": args.index, "k": args.k, "latency_ms": round(ms, 2),
               "hits": [h.to_dict() for h in hits]}
        print(jsontext.dumps(out, indent=2))
        return 0
    if not hits:
        print(f"no results ({ms:.1f} ms)")
    for n, h in enumerate(hits, 1):
        score = f"  [{h.score:.3f}]" if h.score is not None else ""
        print(f"{n}. {h.title}{score}\n   {h.url}" + (f"  ({h.date})" if h.date else ""))
        if h.snippet:
            print(f"   {h.snippet}")
    if hits:
        print(f"({len(hits)} hits, {ms:.1f} ms)")
    return 0


def _search_image(args: argparse.Namespace) -> tuple[list, dict[str, Any]]:
    from deepmmsearch.registry import ConfigError
    from deepmmsearch.tools.crop import ImageLoadError, crop_box, load_image
    from deepmmsearch.types import Box

    try:
        from deepmmsearch.tools.image.local import LocalImageSearch
    except ImportError as exc:
        raise ConfigError(f"the local image index is not available in this build ({exc})") from None
    try:
        image = load_image(args.image)
    except ImageLoadError as exc:
        raise ConfigError(str(exc)) from None
    backend = LocalImageSearch(args.index, windows=args.windows, rerank=args.rerank)
    extra: dict[str, Any] = {"image": args.image}
    box = _parse_box(args.box) if args.box else None
    if args.crop and box is None:
        box = asyncio.run(_ground(args, image))
        extra["grounder"] = args.grounder
        if box is None:
            raise ConfigError(f"the grounder found nothing matching {args.crop!r} in {args.image}")
    if box is not None:
        image, box = crop_box(image, Box(*box) if not isinstance(box, Box) else box)
        extra["box"] = box.as_list()
    return backend.query(image, args.k), extra


def _parse_box(text: str) -> list[float]:
    from deepmmsearch.registry import ConfigError

    try:
        box = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
        raise ConfigError(f"--box must be x1,y1,x2,y2 with x2 > x1 and y2 > y1, got {text!r}")
    return box


async def _ground(args: argparse.Namespace, image) -> Any:
    from deepmmsearch.config import parse_yaml
    from deepmmsearch.registry import GROUNDER, ConfigError

    opts: dict[str, Any] = {}
    for item in args.grounder_option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--grounder-option expects KEY=VALUE, got {item!r}")
        opts[key.strip()] = parse_yaml(value)
    grounder = GROUNDER.build({"name": args.grounder, **opts})
    return await grounder.ground(image, args.crop)
