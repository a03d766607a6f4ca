"""Generated pictures and cluttered scenes for tests and benchmarks of image search.

Deterministic from a seed, numpy + PIL only. ``make_picture(seed)`` draws a distinctive picture
(background gradient, a few coloured shapes, sometimes stripes); ``make_scene`` pastes pictures
(resized) onto a cluttered background and returns the scene with the pasted boxes, so a test can
search the whole scene or a crop around one pasted picture::

    from deepmmsearch.tools.image.synthetic import make_picture, make_scene
    pics = [make_picture(i) for i in range(3)]
    scene, boxes = make_scene(pics, size=(384, 288), seed=7)

This is not SimWeb (whose pictures belong to entities with facts); it is the image-search
benchmark's own gallery, sized to match SimWeb's (64-128 px pictures in 256-448 px scenes).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from deepmmsearch.types import Box


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _shape(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int,
           min_frac: float = 0.15, max_frac: float = 0.6) -> None:
    sw = rng.uniform(min_frac, max_frac) * w
    sh = rng.uniform(min_frac, max_frac) * h
    x, y = rng.uniform(-0.1 * w, w - 0.5 * sw), rng.uniform(-0.1 * h, h - 0.5 * sh)
    xy = [x, y, x + sw, y + sh]
    kind = rng.randrange(4)
    fill = _colour(rng)
    if kind == 0:
        draw.ellipse(xy, fill=fill)
    elif kind == 1:
        draw.rectangle(xy, fill=fill)
    elif kind == 2:
        pts = [(rng.uniform(x, x + sw), rng.uniform(y, y + sh)) for _ in range(rng.randint(3, 6))]
        draw.polygon(pts, fill=fill)
    else:
        draw.line([(x, y), (x + sw, y + sh)], fill=fill, width=max(2, int(min(w, h) * 0.06)))


def make_picture(seed: int, size: int | tuple[int, int] = 128) -> Image.Image:
    """A distinctive RGB picture determined by ``seed``."""
    w, h = (size, size) if isinstance(size, int) else size
    rng = random.Random(seed * 7919 + 17)
    c0, c1 = np.array(_colour(rng), np.float32), np.array(_colour(rng), np.float32)
    t = np.linspace(0.0, 1.0, h if rng.random() < 0.5 else w, dtype=np.float32)[:, None]
    ramp = c0 * (1 - t) + c1 * t
    arr = np.broadcast_to(ramp[:, None, :], (h, w, 3)) if len(t) == h else \
        np.broadcast_to(ramp[None, :, :], (h, w, 3))
    img = Image.fromarray(np.ascontiguousarray(arr).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    if rng.random() < 0.3:  # stripes
        col, step = _colour(rng), rng.randint(6, 16) * max(1, w // 64)
        for x in range(0, w + h, step * 2):
            draw.line([(x, 0), (x - h, h)], fill=col, width=step // 2 + 1)
    for _ in range(rng.randint(2, 5)):
        _shape(draw, rng, w, h)
    return img


def clutter_background(size: tuple[int, int], seed: int, n_shapes: int = 40) -> Image.Image:
    """Noise, blurred blobs and many small shapes: a background that confuses global matching."""
    w, h = size
    rng = random.Random(seed * 104729 + 3)
    nrng = np.random.default_rng(seed)
    base = nrng.integers(0, 256, size=(max(1, h // 16), max(1, w // 16), 3), dtype=np.uint8)
    img = Image.fromarray(base, "RGB").resize((w, h), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    for _ in range(n_shapes):
        _shape(draw, rng, w, h, 0.03, 0.25)
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    noise = nrng.normal(0, 8, size=(h, w, 3))
    return Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))


def make_scene(pictures: Sequence[Image.Image], size: tuple[int, int] = (384, 288), seed: int = 0,
               picture_px: tuple[int, int] = (64, 128)) -> tuple[Image.Image, list[Box]]:
    """Paste each picture (resized to a random edge in ``picture_px``) without overlap, if it can.

    Returns the scene and one pixel box per picture, in order.
    """
    rng = random.Random(seed)
    scene = clutter_background(size, seed)
    w, h = size
    boxes: list[Box] = []
    for pic in pictures:
        edge = rng.randint(*picture_px)
        scale = edge / max(pic.size)
        pw, ph = max(8, round(pic.size[0] * scale)), max(8, round(pic.size[1] * scale))
        pw, ph = min(pw, w), min(ph, h)
        for _attempt in range(50):
            x, y = rng.randint(0, w - pw), rng.randint(0, h - ph)
            cand = Box(x, y, x + pw, y + ph)
            if all(not _overlap(cand, b) for b in boxes):
                break
        scene.paste(pic.resize((pw, ph), Image.LANCZOS), (int(cand.x1), int(cand.y1)))
        boxes.append(cand)
    return scene, boxes


def _overlap(a: Box, b: Box) -> bool:
    return not (a.x2 <= b.x1 or b.x2 <= a.x1 or a.y2 <= b.y1 or b.y2 <= a.y1)
