"""``simweb``: the world's annotation grounder — not a detector.

SimWeb records, for every scene it draws, the box of each entity picture and the referring
expressions that single it out ("the red bird on the left", "the bird on the left", "the red
bird"). This grounder looks the image up by content hash (the SHA-256 of its RGB pixels, as in
:func:`deepmmsearch.tools.cache.image_digest`) and returns the recorded box of the expression;
an image that is not one of the world's scenes, or an expression it did not generate, gives None
(the toolbox then searches the whole image or reports that nothing was found). It stands in for
Grounding DINO when the world itself is the benchmark, so crop search is exact and cheap; it says
nothing about how well a real grounder would do.

    grounder: {name: simweb, world: runs/simweb}
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from deepmmsearch.simweb.world import Scene, World, normalise_expression
from deepmmsearch.tools.cache import image_digest
from deepmmsearch.types import Box

log = logging.getLogger(__name__)


def _index(scene: Scene) -> dict[str, Box]:
    out: dict[str, Box] = {}
    for obj in scene.objects:
        for expr in [obj.expression, *obj.aliases]:
            out.setdefault(normalise_expression(expr), Box(*obj.box))
    return out


class SimWebGrounder:
    """Resolves SimWeb's own referring expressions to its recorded boxes (see the module doc)."""

    name = "simweb"

    def __init__(self, world: str | Path | World) -> None:
        self.world = world if isinstance(world, World) else World.load(world)
        self._boxes: dict[str, dict[str, Box]] = {}

    def lookup(self, digest: str, expression: str) -> Box | None:
        scene = self.world.scene_by_digest.get(digest)
        if scene is None:
            return None
        if digest not in self._boxes:
            self._boxes[digest] = _index(scene)
        return self._boxes[digest].get(normalise_expression(expression))

    async def ground(self, image: Any, expression: str) -> Box | None:
        if getattr(image, "mode", "RGB") != "RGB":
            image = image.convert("RGB")  # scenes are hashed as RGB, as the toolbox loads them
        box = self.lookup(image_digest(image), expression)
        if box is None:
            log.debug("simweb grounder: no recorded box for %r", expression)
        return box
