"""Cropping — pure functions over PIL images.

``crop_box`` clamps a box to the image, pads it by a margin, grows it to a minimum size around
its centre and keeps the original resolution (no resizing). ``load_image`` reads any file PIL
understands, applies the EXIF orientation and converts to RGB (RGBA on white, greyscale, 16-bit),
with a clear error for a missing or corrupt file.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from deepmmsearch.types import Box


class ImageLoadError(ValueError):
    """The image file is missing, unreadable or not an image."""


def to_rgb(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation and convert any PIL mode to 8-bit RGB.

    Transparency is composited on white; high bit-depth and float images (``I;16``, ``I``, ``F``)
    are scaled from their own range (min(0, lowest) .. highest) to 0-255.
    """
    img = ImageOps.exif_transpose(img) or img
    if img.mode == "La":  # premultiplied alpha: PIL converts it only to LA
        img = img.convert("LA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
        lo = min(0.0, float(arr.min())) if arr.size else 0.0
        hi = float(arr.max()) if arr.size else 1.0
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        img = Image.fromarray(np.rint((arr - lo) * scale).clip(0, 255).astype("uint8"), "L")
    return img.convert("RGB") if img.mode != "RGB" else img


def load_image(path: str | Path) -> Image.Image:
    p = Path(path)
    if not p.exists():
        raise ImageLoadError(f"image not found: {p}")
    try:
        with Image.open(p) as im:
            im.load()
            return to_rgb(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageLoadError(f"cannot read image {p}: {exc}") from None


def clamp_box(box: Box, width: int, height: int) -> Box | None:
    """Order the corners and clamp to the image; None when nothing of the box lies inside
    (or a coordinate is not a finite number)."""
    if not all(math.isfinite(v) for v in box.as_list()):
        return None
    x1, x2 = sorted((box.x1, box.x2))
    y1, y2 = sorted((box.y1, box.y2))
    x1, x2 = max(0.0, x1), min(float(width), x2)
    y1, y2 = max(0.0, y1), min(float(height), y2)
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None
    return Box(x1, y1, x2, y2)


def pad_box(box: Box, width: int, height: int, *, margin: float = 0.1, min_size: int = 32) -> Box:
    """Pad by ``margin`` of the box size on each side, grow to ``min_size``, stay in the image."""
    w, h = box.width, box.height
    x1, y1 = box.x1 - margin * w, box.y1 - margin * h
    x2, y2 = box.x2 + margin * w, box.y2 + margin * h
    min_w, min_h = min(min_size, width), min(min_size, height)
    if x2 - x1 < min_w:
        cx = (x1 + x2) / 2
        x1, x2 = cx - min_w / 2, cx + min_w / 2
    if y2 - y1 < min_h:
        cy = (y1 + y2) / 2
        y1, y2 = cy - min_h / 2, cy + min_h / 2
    # shift back inside rather than shrink, so the minimum size holds
    if x1 < 0:
        x1, x2 = 0.0, x2 - x1
    if y1 < 0:
        y1, y2 = 0.0, y2 - y1
    if x2 > width:
        x1, x2 = max(0.0, x1 - (x2 - width)), float(width)
    if y2 > height:
        y1, y2 = max(0.0, y1 - (y2 - height)), float(height)
    return Box(round(x1), round(y1), round(x2), round(y2))


def crop_box(
    image: Image.Image, box: Box, *, margin: float = 0.1, min_size: int = 32
) -> tuple[Image.Image, Box]:
    """Crop ``box`` out of ``image``. Returns the crop and the box actually cut.

    Raises ValueError for a box entirely outside the image or with zero area.
    """
    clamped = clamp_box(box, *image.size)
    if clamped is None:
        raise ValueError(f"box {box.as_list()} is empty or outside the {image.size[0]}x{image.size[1]} image")
    final = pad_box(clamped, *image.size, margin=margin, min_size=min_size)
    region = image.crop((int(final.x1), int(final.y1), int(final.x2), int(final.y2)))
    return region, final


def draw_box(image: Image.Image, box: Box, *, color: str = "red", label: str | None = None) -> Image.Image:
    """A copy of ``image`` with ``box`` drawn on it."""
    out = image.convert("RGB").copy()
    d = ImageDraw.Draw(out)
    width = max(2, round(min(out.size) / 150))
    d.rectangle(box.as_list(), outline=color, width=width)
    if label:
        d.text((box.x1 + 3, box.y1 + 3), label[:40], fill=color)
    return out
