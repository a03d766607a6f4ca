"""The model-family table: everything that differs between base models, chosen by ``model_type``.

A checkpoint's ``config.json`` names its ``model_type``; :func:`family_for` maps it to one
:class:`ModelFamily` entry, and code that builds, loads, prompts or grounds with a model reads
the entry instead of asking which model it has. Adding a family is adding an entry here (and,
for a tiny random one, its config sizes in ``tiny_text`` / ``tiny_vision``)::

    fam = family_for("qwen3_vl")
    fam.image_factor                           # 32: pixels per image token side (patch 16 × merge 2)
    fam.image_tokens(480, 640, min_pixels=3136, max_pixels=1003520)

What the families share, by construction: our chat template (:mod:`.template`) and its segment
encoding (:mod:`.encoding`), and the special tokens it uses (``<|im_start|>``, ``<|im_end|>``,
``<|vision_start|><|image_pad|><|vision_end|>``), which every Qwen-VL tokenizer has. Pure: no
torch; class names are strings resolved where the model is built.

>>> family_for("qwen2_5_vl").image_factor, family_for("qwen3_vl").image_factor
(28, 32)
>>> family_for("qwen3_vl").self_coords
'norm1000'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from deepmmsearch.registry import ConfigError, did_you_mean

DEFAULT_FAMILY = "qwen2_5_vl"  # the paper's base model


def resized_size(width: int, height: int, *, factor: int = 28, min_pixels: int = 56 * 56,
                 max_pixels: int = 28 * 28 * 1280) -> tuple[int, int]:
    """(width, height) a Qwen-VL image processor resizes an image to.

    Each side is rounded to a multiple of ``factor`` (patch size × merge size), then the area is
    scaled into [min_pixels, max_pixels] keeping the aspect ratio. Pass the processor's own
    ``min_pixels`` / ``max_pixels`` (its ``size`` shortest_edge / longest_edge).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"bad image size {width}x{height}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return w_bar, h_bar


@dataclass(frozen=True)
class ModelFamily:
    """One base-model family. Class names are looked up in ``transformers`` when needed."""

    name: str  # the registry-style key, e.g. "qwen3_vl"
    label: str  # for people: "Qwen3-VL"
    model_types: tuple[str, ...]  # config.json model_type values of this family
    config_class: str
    model_class: str  # also vLLM's architecture name
    processor_class: str
    patch_size: int  # vision patch side in pixels
    merge_size: int  # patches merged per image token side
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    self_coords: str  # the frame of boxes the model writes: "qwen2.5-vl" (resized pixels) | "norm1000"
    example_checkpoint: str  # a hub id of an instruct model
    tiny_text: dict[str, Any] = field(default_factory=dict)  # extra text-config keys of a tiny model
    tiny_vision: dict[str, Any] = field(default_factory=dict)  # extra vision-config keys

    @property
    def image_factor(self) -> int:
        """Pixels per side of one image token (patch × merge)."""
        return self.patch_size * self.merge_size

    def resized_size(self, width: int, height: int, *, min_pixels: int, max_pixels: int) -> tuple[int, int]:
        return resized_size(width, height, factor=self.image_factor, min_pixels=min_pixels,
                            max_pixels=max_pixels)

    def image_tokens(self, height: int, width: int, *, min_pixels: int, max_pixels: int) -> int:
        """``<|image_pad|>`` tokens of an image of this size (the processor's own count is
        ``image_processor.get_number_of_image_patches / merge_size²``; a test checks they agree)."""
        w, h = self.resized_size(width, height, min_pixels=min_pixels, max_pixels=max_pixels)
        return (w // self.image_factor) * (h // self.image_factor)


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

FAMILIES: dict[str, ModelFamily] = {
    f.name: f for f in (
        ModelFamily(
            name="qwen2_5_vl", label="Qwen2.5-VL", model_types=("qwen2_5_vl",),
            config_class="Qwen2_5_VLConfig", model_class="Qwen2_5_VLForConditionalGeneration",
            processor_class="Qwen2_5_VLProcessor", patch_size=14, merge_size=2,
            image_mean=CLIP_MEAN, image_std=CLIP_STD, self_coords="qwen2.5-vl",
            example_checkpoint="Qwen/Qwen2.5-VL-7B-Instruct",
            tiny_vision={"window_size": 112, "fullatt_block_indexes": "last"},
        ),
        ModelFamily(
            name="qwen3_vl", label="Qwen3-VL", model_types=("qwen3_vl",),
            config_class="Qwen3VLConfig", model_class="Qwen3VLForConditionalGeneration",
            processor_class="Qwen3VLProcessor", patch_size=16, merge_size=2,
            image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5), self_coords="norm1000",
            example_checkpoint="Qwen/Qwen3-VL-8B-Instruct",
            tiny_text={"mrope_interleaved": True},
            tiny_vision={"num_position_embeddings": 64, "deepstack_visual_indexes": "first"},
        ),
        ModelFamily(
            name="qwen3_5", label="Qwen3.5", model_types=("qwen3_5",),
            config_class="Qwen3_5Config", model_class="Qwen3_5ForConditionalGeneration",
            processor_class="Qwen3VLProcessor", patch_size=16, merge_size=2,
            image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5), self_coords="norm1000",
            example_checkpoint="Qwen/Qwen3.5-9B",
            tiny_text={"mrope_interleaved": True, "layer_types": "alternate",
                       "partial_rotary_factor": 0.5, "linear_key_head_dim": 16,
                       "linear_value_head_dim": 16, "linear_num_key_heads": 2,
                       "linear_num_value_heads": 4},
            tiny_vision={"num_position_embeddings": 64},
        ),
    )
}
_BY_MODEL_TYPE = {t: f for f in FAMILIES.values() for t in f.model_types}


def family_for(model_type: str | None) -> ModelFamily:
    """The family of a ``model_type`` (or of a family name); None → the default (Qwen2.5-VL)."""
    if model_type is None:
        return FAMILIES[DEFAULT_FAMILY]
    fam = _BY_MODEL_TYPE.get(model_type) or FAMILIES.get(model_type)
    if fam is None:
        raise ConfigError(
            f"unsupported model_type {model_type!r}{did_you_mean(model_type, _BY_MODEL_TYPE)}; "
            f"supported: {', '.join(sorted(_BY_MODEL_TYPE))}")
    return fam


def family_of(obj: Any) -> ModelFamily:
    """The family of a model or a config (anything with ``model_type`` or ``config.model_type``)."""
    config = getattr(obj, "config", obj)
    return family_for(getattr(config, "model_type", None))
