"""Crop and image loading edge cases: boxes outside/degenerate/non-finite, tiny images, EXIF
rotation, RGBA / greyscale / 16-bit / float images, corrupt files."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from deepmmsearch.tools.crop import (
    ImageLoadError,
    clamp_box,
    crop_box,
    draw_box,
    load_image,
    pad_box,
    to_rgb,
)
from deepmmsearch.types import Box


def _img(w=200, h=100):
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = np.arange(w)[None, :] % 256
    arr[..., 1] = np.arange(h)[:, None] % 256
    return Image.fromarray(arr)


def test_crop_keeps_resolution_and_pads_by_the_margin():
    img = _img()
    crop, box = crop_box(img, Box(50, 20, 90, 60), margin=0.25, min_size=8)
    assert box == Box(40, 10, 100, 70)
    assert crop.size == (60, 60)
    assert crop.getpixel((0, 0)) == img.getpixel((40, 10))  # no resampling


def test_box_partly_outside_is_clamped_and_fully_outside_is_rejected():
    img = _img()
    _, box = crop_box(img, Box(-50, -50, 40, 40), margin=0.0, min_size=1)
    assert box == Box(0, 0, 40, 40)
    _, box = crop_box(img, Box(180, 80, 500, 400), margin=0.0, min_size=1)
    assert box == Box(180, 80, 200, 100)
    with pytest.raises(ValueError, match="outside"):
        crop_box(img, Box(300, 10, 400, 50))
    with pytest.raises(ValueError, match="outside"):
        crop_box(img, Box(-30, -30, -1, -1))


def test_swapped_corners_are_ordered():
    _, box = crop_box(_img(), Box(90, 60, 50, 20), margin=0.0, min_size=1)
    assert box == Box(50, 20, 90, 60)


@pytest.mark.parametrize("box", [Box(50, 20, 50, 60), Box(10, 30, 80, 30), Box(5, 5, 5, 5),
                                 Box(math.nan, 0, 50, 50), Box(0, 0, math.inf, 50)])
def test_degenerate_or_non_finite_boxes_are_rejected(box):
    assert clamp_box(box, 200, 100) is None
    with pytest.raises(ValueError):
        crop_box(_img(), box)


def test_minimum_size_grows_a_tiny_box_around_its_centre_inside_the_image():
    _, box = crop_box(_img(), Box(100, 50, 102, 52), margin=0.0, min_size=32)
    assert (box.width, box.height) == (32, 32)
    assert abs((box.x1 + box.x2) / 2 - 101) <= 1
    _, box = crop_box(_img(), Box(0, 0, 2, 2), margin=0.0, min_size=32)  # at the corner: shifted in
    assert box == Box(0, 0, 32, 32)


def test_tiny_image_gives_the_whole_image():
    tiny = _img(5, 3)
    crop, box = crop_box(tiny, Box(1, 1, 2, 2), min_size=32)
    assert crop.size == (5, 3) and box == Box(0, 0, 5, 3)


@settings(max_examples=150, deadline=None)
@given(st.floats(-500, 500), st.floats(-500, 500), st.floats(-500, 500), st.floats(-500, 500),
       st.integers(1, 300), st.integers(1, 300), st.floats(0, 1), st.integers(1, 64))
def test_crop_box_property(x1, y1, x2, y2, w, h, margin, min_size):
    """Any box either raises ValueError or yields a non-empty box inside the image."""
    try:
        final = pad_box(clamp_box(Box(x1, y1, x2, y2), w, h) or Box(0, 0, 0, 0), w, h,
                        margin=margin, min_size=min_size)
    except ValueError:
        return
    if clamp_box(Box(x1, y1, x2, y2), w, h) is None:
        return
    assert 0 <= final.x1 < final.x2 <= w and 0 <= final.y1 < final.y2 <= h
    assert final.width >= min(min_size, w) - 1 and final.height >= min(min_size, h) - 1


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_exif_rotation_is_applied(tmp_path):
    img = _img(200, 100)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = _save(img, tmp_path / "rot.jpg", exif=exif.tobytes())
    loaded = load_image(path)
    assert loaded.size == (100, 200)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    loaded = load_image(_save(rgba, tmp_path / "a.png"))
    assert loaded.mode == "RGB"
    assert loaded.getpixel((5, 5)) == (255, 255, 255) and loaded.getpixel((0, 0)) == (0, 0, 255)
    p = Image.new("P", (4, 4), 0)
    p.info["transparency"] = 0
    assert to_rgb(p).getpixel((1, 1)) == (255, 255, 255)


def test_greyscale_16bit_and_float_images(tmp_path):
    grey = load_image(_save(Image.new("L", (8, 8), 77), tmp_path / "g.png"))
    assert grey.mode == "RGB" and grey.getpixel((0, 0)) == (77, 77, 77)
    arr16 = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    path = tmp_path / "deep.png"
    Image.fromarray(arr16).save(path)
    assert Image.open(path).mode.startswith("I")
    deep = load_image(path)
    assert deep.mode == "RGB" and deep.getpixel((0, 0))[0] == 0 and deep.getpixel((7, 7))[0] == 255
    f = Image.fromarray(np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8), "F")
    rgb = to_rgb(f)
    assert rgb.getpixel((0, 0))[0] == 0 and rgb.getpixel((7, 7))[0] == 255
    for mode in ("1", "CMYK", "LA", "La", "PA", "I;16", "RGBa", "YCbCr"):
        assert to_rgb(Image.new(mode, (3, 2))).mode == "RGB", mode


def test_corrupt_missing_and_non_image_files_raise_image_load_error(tmp_path):
    buf = io.BytesIO()
    _img().save(buf, "PNG")
    (tmp_path / "trunc.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "empty.jpg").write_bytes(b"")
    for name in ("trunc.png", "text.png", "empty.jpg"):
        with pytest.raises(ImageLoadError, match="cannot read image"):
            load_image(tmp_path / name)
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageLoadError):
        load_image(tmp_path)  # a directory


def test_draw_box_draws_on_a_copy():
    img = Image.new("RGB", (100, 100), (255, 255, 255))
    out = draw_box(img, Box(10, 10, 50, 50), label="the bird")
    assert img.getpixel((10, 30)) == (255, 255, 255)
    assert out.getpixel((10, 30)) == (255, 0, 0)
