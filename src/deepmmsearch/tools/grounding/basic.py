"""Grounders that need no model.

- ``fixed``: a fake that returns the same box (or, with ``boxes``, a box per expression; ``None``
  for "not found"), clamped to the image (None when it lies outside).
- ``self``: the policy grounds the entity itself by writing a box in ``<img_search>`` — pixel
  coordinates ``[x1, y1, x2, y2]`` of the image it saw, or Qwen2.5-VL's ``{"bbox_2d": [...]}``.
  The toolbox maps such boxes to original pixels with ``SelfGrounder.to_original`` (``coords``:
  ``pixels`` with an optional ``input_size``, ``qwen2.5-vl`` resized-input pixels, ``norm1000``,
  or a model family's name, which picks that family's frame);
  as a grounder it parses an expression that is a box and returns None for plain text.
"""

from __future__ import annotations

from typing import Any

from deepmmsearch.conversation.families import FAMILIES, family_for, resized_size
from deepmmsearch.protocol import parse_box
from deepmmsearch.registry import ConfigError, did_you_mean
from deepmmsearch.tools.cache import normalise_query
from deepmmsearch.tools.crop import clamp_box
from deepmmsearch.types import Box


class FixedGrounder:
    name = "fixed"

    def __init__(self, box: list[float] | None = None,
                 boxes: dict[str, list[float] | None] | None = None) -> None:
        self.box = Box(*box) if box else None
        self.boxes = {normalise_query(k): (Box(*v) if v else None) for k, v in (boxes or {}).items()}

    async def ground(self, image: Any, expression: str) -> Box | None:
        key = normalise_query(expression)
        w, h = image.size
        if key in self.boxes:
            box = self.boxes[key]
        elif self.box is not None:
            box = self.box
        else:  # default: the central quarter
            box = Box(w / 4, h / 4, 3 * w / 4, 3 * h / 4)
        return None if box is None else clamp_box(box, w, h)


def qwen_resized_size(width: int, height: int, *, factor: int = 28, min_pixels: int = 56 * 56,
                      max_pixels: int = 28 * 28 * 1280) -> tuple[int, int]:
    """(width, height) a Qwen-VL image processor resizes an image to (factor 28: Qwen2-VL /
    Qwen2.5-VL; 32: Qwen3-VL); see :func:`deepmmsearch.conversation.families.resized_size`."""
    return resized_size(width, height, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)


COORDS = ("pixels", "qwen2.5-vl", "norm1000")


class SelfGrounder:
    """The policy wrote the box. ``coords`` says in which frame:

    - ``pixels`` (default): pixels of the image the model saw; with ``input_size: [w, h]`` the
      box is rescaled from that size to the original.
    - ``qwen2.5-vl``: pixels of the processor's resized input, computed by
      :func:`qwen_resized_size` from ``min_pixels`` / ``max_pixels`` (Qwen2.5-VL ``bbox_2d``).
    - ``norm1000``: 0-1000 normalised coordinates (Qwen2-VL box tokens, Qwen3-VL ``bbox_2d``).
    - a model family (``qwen2_5_vl``, ``qwen3_vl``, ``qwen3_5``; conversation/families.py): that
      family's frame — Qwen2.5-VL's resized pixels (factor 28), Qwen3-VL's and Qwen3.5's 0-1000.

    The toolbox calls :meth:`to_original` on a box parsed from ``<img_search>``; :meth:`ground`
    does the same for an expression that is a box and returns None for plain text.
    """

    name = "self"

    def __init__(self, input_size: list[int] | None = None, coords: str = "pixels",
                 min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280) -> None:
        choices = COORDS + tuple(FAMILIES)
        if coords not in choices:
            raise ConfigError(f"self grounder: coords must be one of {', '.join(choices)}, got {coords!r}"
                              f"{did_you_mean(coords, choices)}")
        if input_size is not None and (len(input_size) != 2 or min(input_size) <= 0):
            raise ConfigError(f"self grounder: input_size must be [width, height], got {input_size!r}")
        self.input_size = tuple(input_size) if input_size else None
        self.coords = coords
        self.factor = 28  # the qwen2.5-vl frame: patch 14 × merge 2
        if coords in FAMILIES:
            fam = family_for(coords)
            self.coords, self.factor = fam.self_coords, fam.image_factor
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels

    def frame(self, image_size: tuple[int, int]) -> tuple[float, float]:
        """(width, height) of the frame the model's coordinates refer to."""
        if self.coords == "norm1000":
            return 1000.0, 1000.0
        if self.coords == "qwen2.5-vl":
            return qwen_resized_size(*image_size, factor=self.factor, min_pixels=self.min_pixels,
                                     max_pixels=self.max_pixels)
        return self.input_size or image_size

    def to_original(self, box: Box, image_size: tuple[int, int]) -> Box:
        fw, fh = self.frame(image_size)
        sx, sy = image_size[0] / fw, image_size[1] / fh
        if sx == 1 and sy == 1:
            return box
        return Box(box.x1 * sx, box.y1 * sy, box.x2 * sx, box.y2 * sy)

    async def ground(self, image: Any, expression: str) -> Box | None:
        box = parse_box(expression)
        if box is None:
            return None
        return clamp_box(self.to_original(box, tuple(image.size)), *image.size)
