"""Grounders that need no model.

- ``fixed``: a fake that returns the same box (or, with ``boxes``, a box per expression; ``None``
  for "not found").
- ``self``: the policy grounds the entity itself by writing a box in ``<img_search>`` — pixel
  coordinates ``[x1, y1, x2, y2]`` of the image it saw, or Qwen2.5-VL's ``{"bbox_2d": [...]}``.
  The episode passes such boxes straight to the crop; as a grounder it parses an expression that
  is a box, rescaling from the model's input resolution (``input_size``) when given, and returns
  None for plain text.
"""

from __future__ import annotations

from typing import Any

from deepmmsearch.protocol import parse_box
from deepmmsearch.tools.cache import normalise_query
from deepmmsearch.types import Box


class FixedGrounder:
    name = "fixed"

    def __init__(self, box: list[float] | None = None,
                 boxes: dict[str, list[float] | None] | None = None) -> None:
        self.box = Box(*box) if box else None
        self.boxes = {normalise_query(k): (Box(*v) if v else None) for k, v in (boxes or {}).items()}

    async def ground(self, image: Any, expression: str) -> Box | None:
        key = normalise_query(expression)
        if key in self.boxes:
            return self.boxes[key]
        if self.box is not None:
            return self.box
        w, h = image.size  # default: the central quarter
        return Box(w / 4, h / 4, 3 * w / 4, 3 * h / 4)


class SelfGrounder:
    name = "self"

    def __init__(self, input_size: list[int] | None = None) -> None:
        # (width, height) of the image as the model saw it (Qwen2.5-VL: the resized input)
        self.input_size = tuple(input_size) if input_size else None

    async def ground(self, image: Any, expression: str) -> Box | None:
        box = parse_box(expression)
        if box is None:
            return None
        if self.input_size:
            sx, sy = image.size[0] / self.input_size[0], image.size[1] / self.input_size[1]
            box = Box(box.x1 * sx, box.y1 * sy, box.x2 * sx, box.y2 * sy)
        return box
