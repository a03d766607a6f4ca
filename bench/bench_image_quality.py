"""Crop-versus-whole image retrieval on a generated cluttered set, per embedder and query option.

    nice -n 10 .venv/bin/python bench/bench_image_quality.py                 # grid variants
    .venv/bin/python bench/bench_image_quality.py --effnet                   # + EfficientNet-Lite0
    .venv/bin/python bench/bench_image_quality.py --simweb runs/simweb       # + a SimWeb world

Gallery: ``--n`` generated pictures (96-160 px). Each query scene pastes 3 gallery pictures
(64-128 px) onto clutter (256-448 px); the target is the first. Query kinds: ``crop`` (its box
padded 10 %, as the toolbox does), ``crop-jit`` (box off by up to 12 % per side, 40-72 px pictures,
JPEG q60: an imprecise grounder), ``part`` (a 50-80 % crop of an indexed picture, resized, JPEG),
and ``whole`` (the whole scene: the baseline). Reports precision@1 per kind and the crop/whole
ratio; writes a bar chart to docs/img/image_crop_vs_whole.png.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def _jpeg(im, q: int = 60):
    from PIL import Image

    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=q)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def make_set(n: int, n_queries: int, seed: int = 1) -> tuple[list, dict[str, list]]:
    from deepmmsearch.tools.crop import crop_box
    from deepmmsearch.tools.image.synthetic import make_picture, make_scene
    from deepmmsearch.types import Box

    rng = random.Random(seed)
    pics = [make_picture(i, size=rng.choice([96, 128, 160])) for i in range(n)]
    q: dict[str, list] = {"crop": [], "crop-jit": [], "part": [], "whole": []}
    for s in range(n_queries):
        ids = rng.sample(range(n), 3)
        size = (rng.randint(256, 448), rng.randint(256, 448))
        scene, boxes = make_scene([pics[i] for i in ids], size=size, seed=s)
        q["crop"].append((ids[0], crop_box(scene, boxes[0])[0]))
        q["whole"].append((ids[0], scene))
        small, sboxes = make_scene([pics[i] for i in ids], size=(448, 448), seed=s + 10_000,
                                   picture_px=(40, 72))
        b = sboxes[0]
        def j() -> float:
            return rng.uniform(-0.12, 0.12)

        jit = Box(b.x1 + j() * b.width, b.y1 + j() * b.height, b.x2 + j() * b.width, b.y2 + j() * b.height)
        q["crop-jit"].append((ids[0], crop_box(_jpeg(small), jit)[0]))
        i = rng.randrange(n)
        w, h = pics[i].size
        f = rng.uniform(0.5, 0.8)
        cw, ch = int(w * f), int(h * f)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        part = pics[i].crop((x, y, x + cw, y + ch)).resize((cw * 2 // 3, ch * 2 // 3))
        q["part"].append((i, _jpeg(part)))
    return pics, q


def evaluate(pics: list, queries: dict[str, list], embedder, options: dict) -> dict:
    from deepmmsearch.tools.image.local import LocalImageSearch, build_index

    with tempfile.TemporaryDirectory() as tmp:
        for i, p in enumerate(pics):
            p.save(f"{tmp}/{i}.png", compress_level=1)
        rows = [{"image": f"{tmp}/{i}.png", "url": str(i)} for i in range(len(pics))]
        t0 = time.perf_counter()
        build_index(rows, f"{tmp}/idx", embedder=embedder, progress=False)
        build_ms = (time.perf_counter() - t0) * 1000 / len(pics)
        search = LocalImageSearch(index=f"{tmp}/idx", **options)
        out: dict = {"build_ms_per_img": build_ms}
        t0 = time.perf_counter()
        n = 0
        for kind, qs in queries.items():
            out[kind] = sum(search.query(im, 1)[0].url == str(t) for t, im in qs) / len(qs)
            n += len(qs)
        out["query_ms"] = (time.perf_counter() - t0) * 1000 / n
    return out


def evaluate_simweb(world: Path, options: dict) -> dict:
    """Crop vs whole on a SimWeb world's multi-entity scenes (its own index/image)."""
    from deepmmsearch.tools.crop import crop_box, load_image
    from deepmmsearch.tools.image.local import LocalImageSearch
    from deepmmsearch.types import Box

    search = LocalImageSearch(index=str(world / "index" / "image"), **options)
    with open(world / "entities.jsonl", encoding="utf-8") as fh:
        names = {e["id"]: e["name"] for e in map(json.loads, fh)}
    crop = whole = n = 0
    with open(world / "scenes.jsonl", encoding="utf-8") as fh:
        scenes = fh.readlines()[:300]
    for line in scenes:
        sc = json.loads(line)
        if sc["kind"] != "multi":
            continue
        img = load_image(world / sc["image"])
        for obj in sc["objects"]:
            url = f"/{names[obj['entity']]}.png"
            crop += search.query(crop_box(img, Box(*obj["box"]))[0], 1)[0].url.endswith(url)
            whole += search.query(img, 1)[0].url.endswith(url)
            n += 1
    return {"crop": crop / n, "whole": whole / n, "n": n}


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = ["crop", "crop-jit", "part", "whole"]
    names = list(results)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(names), 3.4))
    width = 0.8 / len(kinds)
    for k, kind in enumerate(kinds):
        ax.bar([i + k * width for i in range(len(names))], [results[m][kind] for m in names], width, label=kind)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names, rotation=15, fontsize=8)
    ax.set_ylabel("precision@1")
    ax.set_ylim(0, 1.05)
    ax.set_title("Local image search: crop vs whole cluttered scene")
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="gallery size")
    ap.add_argument("--queries", type=int, default=150, help="scenes (queries per kind)")
    ap.add_argument("--effnet", action="store_true", help="also EfficientNet-Lite0 (slow on CPU)")
    ap.add_argument("--effnet-n", type=int, default=400, help="gallery size for the EffNet comparison")
    ap.add_argument("--simweb", help="a built SimWeb world folder")
    ap.add_argument("--plot", default=str(ROOT / "docs" / "img" / "image_crop_vs_whole.png"))
    args = ap.parse_args(argv if argv is not None else [])
    pics, queries = make_set(args.n, args.queries)
    configs = {
        "grid/none": ("grid", {"windows": "none"}),
        "grid/center": ("grid", {"windows": "center"}),
        "grid/grid": ("grid", {"windows": "grid"}),
        "grid/center+orb": ("grid", {"windows": "center", "rerank": "orb"}),
    }
    results: dict[str, dict] = {}
    print(f"gallery {args.n}, {args.queries} queries per kind")
    print(f"{'method':<20} {'crop':>6} {'crop-jit':>8} {'part':>6} {'whole':>6} {'crop/whole':>10} "
          f"{'build ms/img':>12} {'query ms':>9}")

    def show(name: str, r: dict) -> None:
        ratio = r["crop"] / r["whole"] if r["whole"] else float("inf")
        print(f"{name:<20} {r['crop']:>6.3f} {r['crop-jit']:>8.3f} {r['part']:>6.3f} {r['whole']:>6.3f} "
              f"{ratio:>10.1f} {r['build_ms_per_img']:>12.2f} {r['query_ms']:>9.2f}", flush=True)

    for name, (emb, opts) in configs.items():
        results[name] = evaluate(pics, queries, emb, opts)
        show(name, results[name])
    if args.effnet:
        small_pics, small_q = make_set(args.effnet_n, min(args.queries, 100), seed=2)
        print(f"-- same-set comparison: gallery {args.effnet_n}")
        for name, emb in (("grid@small", "grid"), ("effnet-lite0@small", "effnet-lite0")):
            results[name] = evaluate(small_pics, small_q, emb, {"windows": "center"})
            show(name, results[name])
    if args.simweb:
        r = evaluate_simweb(Path(args.simweb), {"windows": "center"})
        print(f"SimWeb {args.simweb}: multi-scene crop P@1 {r['crop']:.3f}, whole {r['whole']:.3f} (n={r['n']})")
    plot(results, Path(args.plot))
    print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
