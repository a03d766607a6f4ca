"""The Qwen-VL processors, usable without torchvision, plus image encoding with a cache.

On CPU we do not install torchvision (its wheel next to CPU torch is a CUDA build that fails to
import), so there is no video processor. ``Qwen2_5_VLProcessor(video_processor=None)`` (and
``Qwen3VLProcessor``) fails a class check; :func:`image_only_processor_class` gives the family's
processor class with that check skipped for a missing video processor
(:class:`ImageOnlyQwenProcessor` is the Qwen2.5-VL one). The family comes from the model's
``model_type`` (:mod:`deepmmsearch.conversation.families`). The
processor cannot ``save_pretrained`` itself in that state, so :func:`save_processor` writes the
tokenizer (with our chat template) and the image processor separately, and :func:`load_processor`
reads them back — from a local directory or a hub id (real Qwen2.5-VL repositories have both).

:class:`ImageEncoder` turns image paths into ``pixel_values`` / ``image_grid_thw`` and the number
of ``<|image_pad|>`` tokens per image, caching processed images (an episode re-encodes the same
image on every turn, an SFT epoch sees each image once per epoch).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepmmsearch.conversation.families import ModelFamily, family_for
from deepmmsearch.conversation.template import CHAT_TEMPLATE
from deepmmsearch.registry import missing_dependency

log = logging.getLogger(__name__)

try:
    from transformers import Qwen2_5_VLProcessor
except ImportError as exc:  # pragma: no cover - depends on the install
    raise missing_dependency("transformers", "train", "the Qwen2.5-VL processor") from exc


class _NoVideoCheck:
    """Accept ``video_processor=None`` (no torchvision) in a processor's class check."""

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
        if argument is None and "video" in argument_name:
            return None
        return super().check_argument_for_proper_class(argument_name, argument)  # type: ignore[misc]


class ImageOnlyQwenProcessor(_NoVideoCheck, Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` that accepts ``video_processor=None`` (no torchvision)."""


_PROCESSOR_CLASSES: dict[str, type] = {"Qwen2_5_VLProcessor": ImageOnlyQwenProcessor}


def image_only_processor_class(family: ModelFamily) -> type:
    """The family's processor class, accepting a missing video processor."""
    name = family.processor_class
    if name not in _PROCESSOR_CLASSES:
        import transformers

        base = getattr(transformers, name)
        _PROCESSOR_CLASSES[name] = type(f"ImageOnly{name}", (_NoVideoCheck, base), {
            "__doc__": f"``{name}`` that accepts ``video_processor=None`` (no torchvision).",
            "__module__": __name__})
    return _PROCESSOR_CLASSES[name]


def make_processor(tokenizer: Any, image_processor: Any, chat_template: str = CHAT_TEMPLATE,
                   family: ModelFamily | None = None) -> Any:
    """Bundle a tokenizer and an image processor (the family's processor class; default
    Qwen2.5-VL); our chat template is set on both."""
    tokenizer.chat_template = chat_template
    cls = image_only_processor_class(family or family_for(None))
    return cls(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
               chat_template=chat_template)


def image_size_kwargs(min_pixels: int | None, max_pixels: int | None) -> dict[str, Any]:
    if min_pixels is None and max_pixels is None:
        return {}
    size: dict[str, int] = {}
    if min_pixels is not None:
        size["shortest_edge"] = int(min_pixels)
    if max_pixels is not None:
        size["longest_edge"] = int(max_pixels)
    return {"size": size}


def load_processor(
    path: str | Path,
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    chat_template: str = CHAT_TEMPLATE,
    revision: str | None = None,
    family: ModelFamily | None = None,
) -> Any:
    """Tokenizer + image processor from a directory or hub id, with our chat template.

    ``family``: the model's (:func:`deepmmsearch.conversation.families.family_of`); without it,
    the ``model_type`` in the directory's ``config.json`` decides (Qwen2.5-VL when there is none).

    ``min_pixels`` / ``max_pixels`` override the image resolution bounds (fewer pixels, fewer
    image tokens: 56×56 gives 4 tokens, 112×112 gives 16).
    """
    from transformers import AutoImageProcessor, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), revision=revision)
    base = {}
    if min_pixels is not None or max_pixels is not None:
        probe = AutoImageProcessor.from_pretrained(str(path), revision=revision)
        size = dict(probe.size) if probe.size else {}
        base = {"size": {"shortest_edge": min_pixels or size.get("shortest_edge"),
                         "longest_edge": max_pixels or size.get("longest_edge")}}
    ip = AutoImageProcessor.from_pretrained(str(path), revision=revision, **base)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return make_processor(tok, ip, chat_template, family=family or _family_on_disk(path))


def _family_on_disk(path: str | Path) -> ModelFamily:
    import json

    config = Path(str(path)) / "config.json"
    if not config.is_file():
        return family_for(None)
    return family_for(json.loads(config.read_text(encoding="utf-8")).get("model_type"))


def save_processor(processor: Any, path: str | Path) -> None:
    """Write the tokenizer (chat template included) and the image processor to ``path``."""
    Path(path).mkdir(parents=True, exist_ok=True)
    processor.tokenizer.chat_template = processor.chat_template or CHAT_TEMPLATE
    processor.tokenizer.save_pretrained(str(path))
    processor.image_processor.save_pretrained(str(path))


def image_token_count(image_processor: Any, height: int, width: int) -> int:
    """Number of ``<|image_pad|>`` tokens for an image of this size."""
    patches = image_processor.get_number_of_image_patches(height, width, {})
    return int(patches) // int(image_processor.merge_size) ** 2


class ImageEncoder:
    """Image paths → (pixel_values, image_grid_thw, tokens per image), with an LRU cache."""

    def __init__(self, image_processor: Any, cache_size: int = 256, max_bytes: int = 512 << 20) -> None:
        self.image_processor = image_processor
        self.cache_size = cache_size
        self.max_bytes = max_bytes  # a 7B-sized image (1280 tokens) is ≈ 24 MB of fp32 pixels
        self._bytes = 0
        self._cache: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
        self._sizes: dict[str, tuple[int, int]] = {}  # path -> (height, width) as displayed

    def _one(self, path: str) -> tuple[Any, Any]:
        hit = self._cache.get(path)
        if hit is not None:
            self._cache.move_to_end(path)
            return hit
        from deepmmsearch.tools.crop import load_image

        out = self.image_processor(images=[load_image(path)], return_tensors="pt")
        item = (out["pixel_values"], out["image_grid_thw"])
        size = item[0].numel() * item[0].element_size()
        if self.cache_size > 0 and size <= self.max_bytes:
            self._cache[path] = item
            self._bytes += size
            while len(self._cache) > self.cache_size or self._bytes > self.max_bytes:
                _, (pv, _) = self._cache.popitem(last=False)
                self._bytes -= pv.numel() * pv.element_size()
        return item

    def token_counts(self, paths: Sequence[str]) -> list[int]:
        """Tokens per image from the image headers only (no pixel decoding)."""
        from PIL import Image

        from deepmmsearch.tools.crop import ImageLoadError

        counts = []
        for p in paths:
            hit = self._cache.get(p)  # .get: another thread may evict meanwhile
            if hit is not None:
                counts.append(int(hit[1][0].prod()) // int(self.image_processor.merge_size) ** 2)
                continue
            size = self._sizes.get(p)
            if size is None:  # a scene is shared by several questions: read its header once
                try:
                    with Image.open(p) as im:
                        w, h = im.size
                        if im.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF rotation by 90°
                            w, h = h, w
                except (OSError, ValueError) as exc:
                    raise ImageLoadError(f"cannot read image {p}: {exc}") from None
                size = (h, w)
                if len(self._sizes) < 1 << 17:
                    self._sizes[p] = size
            counts.append(image_token_count(self.image_processor, *size))
        return counts

    def encode(self, paths: Sequence[str]) -> dict[str, Any]:
        """``pixel_values`` and ``image_grid_thw`` for the images, concatenated in order."""
        import torch

        if not paths:
            return {}
        items = [self._one(str(p)) for p in paths]
        return {
            "pixel_values": torch.cat([pv for pv, _ in items], dim=0),
            "image_grid_thw": torch.cat([g for _, g in items], dim=0),
        }
