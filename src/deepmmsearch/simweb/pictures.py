"""Generated pictures: one distinctive picture per entity, backgrounds and clutter for scenes.

Every picture is a deterministic function of its random stream. An entity's picture is a square
tile: a pale background, a category silhouette (bird, building, car, plant, logo) in the entity's
main colour — the colour referring expressions name — and entity-specific details (proportions,
a second colour, a body pattern, small marks) that make it findable among thousands of
look-alikes.

>>> import random
>>> img = entity_picture("bird", (205, 35, 35), random.Random(1), 64)
>>> img.size, img.mode
((64, 64), 'RGB')
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
BACKGROUNDS = ("plain", "gradient", "stripes", "checks", "noise")


def _jitter(c: RGB, rng: random.Random, amount: int = 14) -> RGB:
    out = tuple(max(0, min(255, v + rng.randint(-amount, amount))) for v in c)
    return out  # type: ignore[return-value]


def _vivid(rng: random.Random) -> RGB:
    """A saturated random colour (for second colours and marks)."""
    hi, lo, mid = rng.randint(170, 255), rng.randint(0, 70), rng.randint(0, 255)
    parts = [hi, lo, mid]
    rng.shuffle(parts)
    return tuple(parts)  # type: ignore[return-value]


def _pale(rng: random.Random) -> RGB:
    return (rng.randint(215, 250), rng.randint(215, 250), rng.randint(215, 250))


def _pattern(
    d: ImageDraw.ImageDraw, rng: random.Random, box: tuple[float, float, float, float], colour: RGB
) -> None:
    """Spots, stripes or a band inside ``box`` (the body), in ``colour``."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    kind = rng.randrange(4)
    if kind == 0:  # spots
        r = max(1.5, min(w, h) * rng.uniform(0.05, 0.09))
        for _ in range(rng.randint(2, 5)):
            cx, cy = rng.uniform(x1 + r, x2 - r), rng.uniform(y1 + r, y2 - r)
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif kind == 1:  # vertical stripes
        step = max(3.0, w / rng.randint(3, 6))
        x = x1 + rng.uniform(0, step / 2)
        while x < x2:
            d.rectangle([x, y1, x + step / 5, y2], fill=colour)
            x += step
    elif kind == 2:  # a band
        t = rng.uniform(0.3, 0.6)
        d.rectangle([x1, y1 + t * h, x2, y1 + (t + 0.12) * h], fill=colour)
    # kind 3: plain body


def _bird(d: ImageDraw.ImageDraw, s: float, main: RGB, second: RGB, rng: random.Random) -> None:
    bw, bh = s * rng.uniform(0.42, 0.55), s * rng.uniform(0.26, 0.34)
    cx, cy = s * rng.uniform(0.45, 0.52), s * rng.uniform(0.5, 0.58)
    body = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
    tail = rng.uniform(0.12, 0.22) * s
    d.polygon(
        [(body[0] + 2, cy), (body[0] - tail, cy - tail * 0.6), (body[0] - tail, cy + tail * 0.3)],
        fill=main,
    )
    d.ellipse(body, fill=main)
    hr = s * rng.uniform(0.1, 0.14)
    hx, hy = body[2] - hr * 0.6, body[1] - hr * 0.2
    d.ellipse([hx - hr, hy - hr, hx + hr, hy + hr], fill=main)
    beak = s * rng.uniform(0.08, 0.16)
    d.polygon(
        [
            (hx + hr * 0.8, hy - hr * 0.3),
            (hx + hr * 0.8 + beak, hy + hr * 0.1),
            (hx + hr * 0.8, hy + hr * 0.4),
        ],
        fill=(230, 170, 40),
    )
    d.ellipse([hx, hy - hr * 0.35, hx + hr * 0.45, hy + hr * 0.1], fill=(20, 20, 20))
    wing = (cx - bw * 0.3, cy - bh * rng.uniform(0.2, 0.5), cx + bw * 0.2, cy + bh * 0.3)
    d.ellipse(wing, fill=second)
    for lx in (cx - bw * 0.12, cx + bw * 0.12):
        d.line(
            [(lx, body[3] - 1), (lx, body[3] + s * 0.1)],
            fill=(60, 40, 20),
            width=max(1, int(s / 40)),
        )


def _building(d: ImageDraw.ImageDraw, s: float, main: RGB, second: RGB, rng: random.Random) -> None:
    w, h = s * rng.uniform(0.35, 0.6), s * rng.uniform(0.45, 0.7)
    x1, y2 = (s - w) / 2 + s * rng.uniform(-0.06, 0.06), s * 0.9
    y1 = y2 - h
    d.rectangle([x1, y1, x1 + w, y2], fill=main)
    roof = rng.randrange(3)
    if roof == 0:
        d.polygon(
            [(x1 - 2, y1), (x1 + w / 2, y1 - s * rng.uniform(0.08, 0.18)), (x1 + w + 2, y1)],
            fill=second,
        )
    elif roof == 1:
        d.pieslice([x1, y1 - w / 2, x1 + w, y1 + w / 2], 180, 360, fill=second)
    else:
        d.rectangle([x1 + w * 0.4, y1 - s * 0.12, x1 + w * 0.55, y1], fill=second)
    cols, rows = rng.randint(2, 4), rng.randint(2, 5)
    ww, wh = w / (2 * cols + 1), h * 0.7 / (2 * rows + 1)
    win = (250, 245, 200) if rng.random() < 0.5 else second
    for i in range(cols):
        for j in range(rows):
            wx, wy = x1 + ww * (2 * i + 1), y1 + h * 0.05 + wh * (2 * j + 1)
            d.rectangle([wx, wy, wx + ww, wy + wh], fill=win)
    d.rectangle([x1 + w * 0.4, y2 - h * 0.18, x1 + w * 0.6, y2], fill=(60, 40, 30))


def _car(d: ImageDraw.ImageDraw, s: float, main: RGB, second: RGB, rng: random.Random) -> None:
    w, h = s * rng.uniform(0.75, 0.92), s * rng.uniform(0.2, 0.3)
    x1, y1 = (s - w) / 2, s * rng.uniform(0.45, 0.55)
    body = (x1, y1, x1 + w, y1 + h)
    cab_l, cab_r = x1 + w * rng.uniform(0.15, 0.3), x1 + w * rng.uniform(0.6, 0.8)
    top = y1 - s * rng.uniform(0.12, 0.2)
    d.polygon(
        [(cab_l, y1), (cab_l + w * 0.08, top), (cab_r - w * 0.05, top), (cab_r, y1)], fill=main
    )
    d.rectangle(body, fill=main)
    _pattern(d, rng, body, second)
    d.polygon(
        [
            (cab_l + w * 0.06, y1 - 2),
            (cab_l + w * 0.1, top + 3),
            (cab_r - w * 0.08, top + 3),
            (cab_r - w * 0.04, y1 - 2),
        ],
        fill=(190, 220, 240),
    )
    r = s * rng.uniform(0.07, 0.1)
    for wx in (x1 + w * 0.22, x1 + w * 0.78):
        d.ellipse([wx - r, y1 + h - r, wx + r, y1 + h + r], fill=(25, 25, 25))
        d.ellipse([wx - r / 2.5, y1 + h - r / 2.5, wx + r / 2.5, y1 + h + r / 2.5], fill=second)


def _plant(d: ImageDraw.ImageDraw, s: float, main: RGB, second: RGB, rng: random.Random) -> None:
    pot_w, pot_h = s * rng.uniform(0.25, 0.35), s * rng.uniform(0.15, 0.22)
    px = (s - pot_w) / 2
    d.polygon(
        [
            (px, s * 0.92 - pot_h),
            (px + pot_w, s * 0.92 - pot_h),
            (px + pot_w * 0.85, s * 0.92),
            (px + pot_w * 0.15, s * 0.92),
        ],
        fill=second,
    )
    stem_top = s * rng.uniform(0.15, 0.3)
    cx = s / 2
    d.line([(cx, s * 0.92 - pot_h), (cx, stem_top)], fill=(40, 110, 40), width=max(1, int(s / 30)))
    for _ in range(rng.randint(2, 4)):
        ly = rng.uniform(stem_top + s * 0.1, s * 0.92 - pot_h - s * 0.05)
        side = rng.choice((-1, 1))
        lw, lh = s * rng.uniform(0.12, 0.2), s * rng.uniform(0.05, 0.09)
        x0 = cx if side > 0 else cx - lw
        d.ellipse([x0, ly - lh, x0 + lw, ly + lh], fill=(60, 140, 50))
    r = s * rng.uniform(0.12, 0.18)
    petals = rng.randint(4, 7)
    for k in range(petals):
        ang = 2 * np.pi * k / petals
        qx, qy = cx + r * 0.8 * np.cos(ang), stem_top + r * 0.8 * np.sin(ang)
        d.ellipse([qx - r * 0.55, qy - r * 0.55, qx + r * 0.55, qy + r * 0.55], fill=main)
    d.ellipse([cx - r * 0.4, stem_top - r * 0.4, cx + r * 0.4, stem_top + r * 0.4], fill=second)


def _logo(d: ImageDraw.ImageDraw, s: float, main: RGB, second: RGB, rng: random.Random) -> None:
    m = s * rng.uniform(0.12, 0.2)
    box = (m, m, s - m, s - m)
    shape = rng.randrange(4)
    if shape == 0:
        d.ellipse(box, fill=main)
    elif shape == 1:
        d.rectangle(box, fill=main)
    elif shape == 2:
        c = s / 2
        d.polygon([(c, m), (s - m, c), (c, s - m), (m, c)], fill=main)
    else:
        c, r = s / 2, s / 2 - m
        d.polygon(
            [(c + r * np.cos(a), c + r * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 7)[:-1]],
            fill=main,
        )
    inner = rng.randrange(4)
    c, r = s / 2, (s / 2 - m) * rng.uniform(0.35, 0.5)
    if inner == 0:
        d.ellipse([c - r, c - r, c + r, c + r], outline=second, width=max(2, int(s / 16)))
    elif inner == 1:
        for k in range(rng.randint(2, 4)):
            y = c - r + k * r * 0.7
            d.rectangle([c - r, y, c + r * rng.uniform(0.2, 1.0), y + r * 0.35], fill=second)
    elif inner == 2:
        pts = [
            (
                c + r * np.cos(a) * (1 if i % 2 == 0 else 0.45),
                c + r * np.sin(a) * (1 if i % 2 == 0 else 0.45),
            )
            for i, a in enumerate(np.linspace(-np.pi / 2, 1.5 * np.pi, 11)[:-1])
        ]
        d.polygon(pts, fill=second)
    else:
        d.polygon([(c - r, c + r), (c, c - r), (c + r, c + r)], fill=second)


_DRAW = {"bird": _bird, "building": _building, "vehicle": _car, "plant": _plant, "logo": _logo}


def _marks(d: ImageDraw.ImageDraw, s: float, rng: random.Random) -> None:
    """Small entity-specific marks near the tile's edges (local features for image search)."""
    for _ in range(rng.randint(2, 4)):
        r = s * rng.uniform(0.03, 0.06)
        edge = rng.randrange(4)
        t = rng.uniform(0.1, 0.9) * s
        x, y = [(t, r * 1.5), (s - r * 1.5, t), (t, s - r * 1.5), (r * 1.5, t)][edge]
        col = _vivid(rng)
        if rng.random() < 0.5:
            d.ellipse([x - r, y - r, x + r, y + r], fill=col)
        else:
            d.rectangle([x - r, y - r, x + r, y + r], fill=col)


def entity_picture(category: str, main: RGB, rng: random.Random, size: int = 64) -> Image.Image:
    """The entity's picture: drawn at twice the size and reduced (smooth edges)."""
    s = size * 2
    img = Image.new("RGB", (s, s), _pale(rng))
    d = ImageDraw.Draw(img)
    main = _jitter(main, rng)
    second = _vivid(rng)
    _DRAW[category](d, float(s), main, second, rng)
    if category in ("bird", "building", "plant", "logo") and rng.random() < 0.6:
        # a pattern on the silhouette's core region, clipped to the main colour's pixels
        _overlay_pattern(img, main, rng, s)
    _marks(d, float(s), rng)
    return img.resize((size, size), Image.LANCZOS)


def _overlay_pattern(img: Image.Image, main: RGB, rng: random.Random, s: int) -> None:
    layer = Image.new("RGB", img.size, (0, 0, 0))
    _pattern(ImageDraw.Draw(layer), rng, (0, 0, s, s), _vivid(rng))
    arr, pat = np.asarray(img).copy(), np.asarray(layer)
    body = np.all(np.abs(arr.astype(np.int16) - np.array(main, np.int16)) < 3, axis=-1)
    mark = pat.any(axis=-1) & body
    arr[mark] = pat[mark]
    img.paste(Image.fromarray(arr))


# ---------------------------------------------------------------------------------------------
# scenes


def background(kind: str, size: tuple[int, int], rng: random.Random) -> Image.Image:
    w, h = size
    a, b = _pale(rng), _jitter(_pale(rng), rng, 40)
    if kind == "plain":
        return Image.new("RGB", size, a)
    if kind == "gradient":
        t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        arr = np.array(a, np.float32) * (1 - t) + np.array(b, np.float32) * t
        return Image.fromarray(np.broadcast_to(arr, (h, w, 3)).astype(np.uint8), "RGB")
    img = Image.new("RGB", size, a)
    d = ImageDraw.Draw(img)
    step = rng.randint(10, 28)
    if kind == "stripes":
        for x in range(-h, w, step * 2):
            d.polygon([(x, 0), (x + step, 0), (x + step + h, h), (x + h, h)], fill=b)
    elif kind == "checks":
        for i in range(0, w, step):
            for j in range(0, h, step):
                if (i // step + j // step) % 2:
                    d.rectangle([i, j, i + step - 1, j + step - 1], fill=b)
    else:  # noise: blurred random blocks
        small = np.random.default_rng(rng.getrandbits(32)).integers(
            150, 250, (h // 12 + 1, w // 12 + 1, 3)
        )
        return Image.fromarray(small.astype(np.uint8), "RGB").resize(size, Image.BILINEAR)
    return img


def clutter(
    img: Image.Image,
    rng: random.Random,
    n: int,
    avoid: list[tuple[int, int, int, int]],
    palette: list[RGB],
) -> None:
    """Draw ``n`` small shapes that stay clear of the ``avoid`` boxes (the entity pictures)."""
    d = ImageDraw.Draw(img)
    w, h = img.size
    for _ in range(n):
        r = rng.uniform(4, 16)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        if any(
            x + r > a[0] - 3 and x - r < a[2] + 3 and y + r > a[1] - 3 and y - r < a[3] + 3
            for a in avoid
        ):
            continue
        col = rng.choice(palette) if rng.random() < 0.5 else _vivid(rng)
        kind = rng.randrange(4)
        if kind == 0:
            d.ellipse([x - r, y - r, x + r, y + r], fill=col)
        elif kind == 1:
            d.rectangle([x - r, y - r * 0.6, x + r, y + r * 0.6], fill=col)
        elif kind == 2:
            d.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=col)
        else:
            d.line([(x - r, y - r), (x + r, y + r)], fill=col, width=3)


def place_boxes(
    rng: random.Random, sizes: list[int], canvas: tuple[int, int], gap: int = 6, tries: int = 400
) -> list[tuple[int, int, int, int]] | None:
    """Non-overlapping positions for square tiles of the given sizes; None when they do not fit."""
    w, h = canvas
    boxes: list[tuple[int, int, int, int]] = []
    for s in sizes:
        for _ in range(tries):
            x, y = rng.randint(gap, w - s - gap), rng.randint(gap, h - s - gap)
            b = (x, y, x + s, y + s)
            if all(
                b[2] + gap <= o[0] or o[2] + gap <= b[0] or b[3] + gap <= o[1] or o[3] + gap <= b[1]
                for o in boxes
            ):
                boxes.append(b)
                break
        else:
            return None
    return boxes
