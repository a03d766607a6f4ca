"""Grounders built on transformers zero-shot object detectors: ``grounding-dino`` and ``owlv2``.

Both load ``AutoProcessor`` / ``AutoModelForZeroShotObjectDetection`` from a hub id or a local
folder (lazily, at the first call), run on CPU or GPU, and return the highest-scoring box for the
referring expression in pixels of the original image (clamped to it), or None when no box passes
the thresholds — the toolbox then searches the whole image or reports "not found", per
``ground_fallback_whole``. Config::

    grounder: {name: grounding-dino, model: /models/grounding-dino-tiny, threshold: 0.3}
    grounder: {name: owlv2, model: google/owlv2-base-patch16-ensemble, threshold: 0.1}

On CPU the real Grounding DINO costs ~3 s per image at a 480 px shortest edge (~9 s at 800):
``shortest_edge`` (default 480) downsizes larger images before the processor sees them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from PIL import Image

from deepmmsearch.registry import ConfigError, missing_dependency
from deepmmsearch.tools.crop import clamp_box
from deepmmsearch.types import Box

log = logging.getLogger(__name__)


class _ZeroShotDetectorGrounder:
    """Shared loading, resizing, post-processing and box selection."""

    name = "detector"
    default_model = ""

    def __init__(self, model: str | None = None, threshold: float = 0.3, device: str = "cpu",
                 shortest_edge: int | None = 480, min_box_px: float = 2.0,
                 local_files_only: bool | None = None) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"{self.name}: threshold must be in [0, 1], got {threshold}")
        self.model_id = str(model or self.default_model)
        self.threshold = float(threshold)
        self.device = device
        self.shortest_edge = shortest_edge
        self.min_box_px = float(min_box_px)
        self.local_files_only = local_files_only
        self._model: Any = None
        self._processor: Any = None
        self._lock = threading.Lock()

    # -- loading ------------------------------------------------------------------------------

    def load(self) -> None:
        """Load the processor and model now (otherwise the first ``ground`` call does)."""
        if self._model is not None:
            return
        try:
            import torch  # noqa: F401
            from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor
        except ImportError:
            raise missing_dependency("transformers", "train", f"the {self.name} grounder") from None
        kw = {} if self.local_files_only is None else {"local_files_only": self.local_files_only}
        log.info("loading %s grounder from %s", self.name, self.model_id)
        self._processor = AutoProcessor.from_pretrained(self.model_id, **kw)
        self._model = AutoModelForZeroShotObjectDetection.from_pretrained(self.model_id, **kw)
        self._model.to(self.device).eval()

    # -- detection ----------------------------------------------------------------------------

    def _model_input(self, image: Image.Image) -> Image.Image:
        image = image.convert("RGB")
        s = self.shortest_edge
        if s and min(image.size) > s:
            scale = s / min(image.size)
            image = image.resize((max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale))),
                                 Image.BILINEAR)
        return image

    def _run(self, image: Image.Image, expression: str, size_hw: tuple[int, int]) -> list[tuple[float, list[float]]]:
        raise NotImplementedError

    def detect(self, image: Image.Image, expression: str) -> list[tuple[float, Box]]:
        """All boxes above the thresholds as (score, box in original pixels), best first."""
        expression = " ".join(str(expression).split())
        if not expression:
            return []
        w, h = image.size
        with self._lock:
            self.load()
            raw = self._run(self._model_input(image), expression, (h, w))
        out = []
        for score, coords in raw:
            box = clamp_box(Box(*(float(c) for c in coords)), w, h)
            if box is not None and box.width >= self.min_box_px and box.height >= self.min_box_px:
                out.append((float(score), box))
        out.sort(key=lambda sb: -sb[0])
        return out

    def best(self, image: Image.Image, expression: str) -> Box | None:
        found = self.detect(image, expression)
        return found[0][1] if found else None

    async def ground(self, image: Image.Image, expression: str) -> Box | None:
        return await asyncio.to_thread(self.best, image, expression)


def _rows(result: dict[str, Any]) -> list[tuple[float, list[float]]]:
    return [(float(s), [float(c) for c in b]) for s, b in zip(result["scores"].tolist(), result["boxes"].tolist())]


class GroundingDinoGrounder(_ZeroShotDetectorGrounder):
    """Grounding DINO: ``threshold`` (box score) and ``text_threshold`` (token score)."""

    name = "grounding-dino"
    default_model = "IDEA-Research/grounding-dino-tiny"

    def __init__(self, model: str | None = None, threshold: float = 0.3, text_threshold: float = 0.25,
                 device: str = "cpu", shortest_edge: int | None = 480, min_box_px: float = 2.0,
                 local_files_only: bool | None = None) -> None:
        super().__init__(model, threshold, device, shortest_edge, min_box_px, local_files_only)
        if not 0.0 <= text_threshold <= 1.0:
            raise ConfigError(f"{self.name}: text_threshold must be in [0, 1], got {text_threshold}")
        self.text_threshold = float(text_threshold)

    @staticmethod
    def prompt(expression: str) -> str:
        """Grounding DINO wants a lower-case phrase ending in a period."""
        return expression.lower().strip().rstrip(".").strip() + "."

    def _run(self, image: Image.Image, expression: str, size_hw: tuple[int, int]) -> list[tuple[float, list[float]]]:
        import torch

        max_len = int(getattr(self._model.config, "max_text_len", 256))
        inputs = self._processor(images=image, text=self.prompt(expression), return_tensors="pt",
                                 truncation=True, max_length=max_len)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            outputs = self._model(**inputs)
        result = self._processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=self.threshold, text_threshold=self.text_threshold,
            target_sizes=[size_hw])[0]
        return _rows(result)


class Owlv2Grounder(_ZeroShotDetectorGrounder):
    """OWLv2 (open-vocabulary detector): the expression is the single text query."""

    name = "owlv2"
    default_model = "google/owlv2-base-patch16-ensemble"

    def __init__(self, model: str | None = None, threshold: float = 0.1, device: str = "cpu",
                 shortest_edge: int | None = 960, min_box_px: float = 2.0,
                 local_files_only: bool | None = None) -> None:
        super().__init__(model, threshold, device, shortest_edge, min_box_px, local_files_only)

    def _run(self, image: Image.Image, expression: str, size_hw: tuple[int, int]) -> list[tuple[float, list[float]]]:
        import torch

        text_cfg = getattr(self._model.config, "text_config", None)
        max_len = int(getattr(text_cfg, "max_position_embeddings", 16))
        inputs = self._processor(text=[[expression.lower()]], images=image, return_tensors="pt",
                                 truncation=True, max_length=max_len, padding="max_length")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            outputs = self._model(**inputs)
        # OWLv2 pads the image to a square; post-processing undoes it given the (h, w) we pass.
        result = self._processor.post_process_grounded_object_detection(
            outputs, threshold=self.threshold, target_sizes=[size_hw])[0]
        return _rows(result)
