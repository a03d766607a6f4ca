"""A tiny random Qwen2.5-VL built locally (nothing downloaded): tests, benchmarks, the quickstart.

::

    from deepmmsearch.models.tiny import TinySpec, build_tiny, default_texts
    model, processor = build_tiny(default_texts(), TinySpec())   # ≈ 0.2M parameters, ≈ 1 s
    save_model_dir(model, processor, "runs/tiny")                 # models/loading.py
    load_model_and_processor("runs/tiny")                         # what the hf policy does

The tokenizer is a byte-level BPE trained with ``tokenizers`` on the given texts: Qwen's special
tokens (``<|im_start|>``, ``<|image_pad|>`` …) are special tokens, the protocol tags
(``<reason>``, ``</text_search>``, ``<information>`` …) are *normal* added tokens (one token each,
kept when decoding, so reward functions see them), and digits split one per token. The model is
``Qwen2_5_VLForConditionalGeneration`` from a config of the given sizes, with random weights.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from deepmmsearch.conversation.template import (
    ENDOFTEXT,
    IM_END,
    IMAGE_PAD,
    SPECIAL_TOKENS,
    VIDEO_PAD,
    VISION_END,
    VISION_START,
)
from deepmmsearch.protocol import (
    ALL_TAGS,
    ANSWER,
    IMG_SEARCH,
    INFORMATION,
    REASON,
    TEXT_SEARCH,
    WHOLE_IMAGE,
    wrap,
)
from deepmmsearch.registry import ConfigError

log = logging.getLogger(__name__)

# one token each, not special: kept by decode(skip_special_tokens=True)
PROTOCOL_TOKENS: tuple[str, ...] = tuple(
    t for tag in ALL_TAGS for t in (f"<{tag}>", f"</{tag}>")
) + (WHOLE_IMAGE,)


@dataclass(frozen=True, kw_only=True)
class TinySpec:
    """Sizes of a tiny Qwen2.5-VL (defaults: ≈ 0.2M parameters; see reference/speedrun.md)."""

    vocab_size: int = 500  # BPE target; the real vocab may be smaller on a small corpus
    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    vision_depth: int = 2
    vision_hidden_size: int = 32
    vision_intermediate_size: int = 64
    vision_heads: int = 2
    max_position_embeddings: int = 8192
    min_pixels: int = 56 * 56  # 56×56 → 4 image tokens
    max_pixels: int = 112 * 112  # 112×112 → 16 image tokens
    tie_embeddings: bool = True
    prefix_space: bool = False  # tokenizer: words after a tag tokenise as inside a sentence
    seed: int = 0

    def __post_init__(self) -> None:
        head_dim, rem = divmod(self.hidden_size, self.num_heads)
        if rem or head_dim % 2 or head_dim < 8:
            raise ConfigError("hidden_size / num_heads must be an even head size of at least 8")
        if self.num_heads % self.num_kv_heads:
            raise ConfigError("num_heads must be a multiple of num_kv_heads")


def mrope_section(head_dim: int) -> list[int]:
    """Split the rotary half-dimension into (temporal, height, width) parts, Qwen-style."""
    half = head_dim // 2
    t = max(1, half // 4)
    h = (half - t) // 2
    return [t, h, half - t - h]


def default_texts() -> list[str]:
    """A small corpus for a tokenizer when no data is at hand: prompts and protocol examples."""
    from deepmmsearch.prompts import PROMPT_SETS

    texts = []
    for p in PROMPT_SETS.values():
        texts += [p.initial, p.after_image_search, p.after_text_search, p.budget_spent,
                  p.invalid_action, p.direct]
    texts += [
        wrap(REASON, "I need to know which bird this is.") + wrap(IMG_SEARCH, "the white bird"),
        wrap(REASON, "It is a great egret; I need its wingspan.")
        + wrap(TEXT_SEARCH, "great egret wingspan"),
        wrap(INFORMATION, "Great egret: The great egret is a large heron. Its wingspan is 131 to 170 cm."),
        wrap(REASON, "The result gives the answer.") + wrap(ANSWER, "131 to 170 cm"),
        "What is the wingspan of this bird? Who designed this bridge? When was it built?",
        "0 1 2 3 4 5 6 7 8 9 the of and to in is was for on with by at from",
    ]
    return texts


def train_tokenizer(texts: Iterable[str], vocab_size: int = 500, prefix_space: bool = False) -> Any:
    """A byte-level BPE (``PreTrainedTokenizerFast``) trained on ``texts``; see the module doc.

    ``prefix_space``: every stretch of text between two tags starts with a space, so a word right
    after a tag (``<text_search>Kelumo``, ``<answer>1807``) is split exactly as inside a sentence
    (``… of Kelumo is 1807.``) — a tiny model then copies names and numbers out of
    ``<information>`` token for token. Decoding keeps that space (``<answer> 1807</answer>``);
    the protocol parser strips it.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    digits = pre_tokenizers.Digits(individual_digits=True)
    if prefix_space:  # byte-level first: the prefix space goes once per stretch, not per digit
        steps = [pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True), digits]
    else:
        steps = [digits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    tok.pre_tokenizer = pre_tokenizers.Sequence(steps)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    # the tags are added tokens, so they are split off before BPE: strip them from the corpus
    def strip_tags(items: Iterable[str]) -> Iterable[str]:
        for t in items:
            for tag in PROTOCOL_TOKENS:
                t = t.replace(tag, " ")
            yield t

    tok.train_from_iterator(strip_tags(texts), trainer)
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in PROTOCOL_TOKENS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=IM_END, pad_token=ENDOFTEXT, padding_side="left",
        model_max_length=1 << 20,
    )
    return fast


def tiny_config(tokenizer: Any, spec: TinySpec) -> Any:
    """A ``Qwen2_5_VLConfig`` of the spec's sizes, with token ids taken from ``tokenizer``."""
    from transformers import Qwen2_5_VLConfig

    ids = tokenizer.convert_tokens_to_ids
    head_dim = spec.hidden_size // spec.num_heads
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": spec.hidden_size,
            "intermediate_size": spec.intermediate_size, "num_hidden_layers": spec.num_layers,
            "num_attention_heads": spec.num_heads, "num_key_value_heads": spec.num_kv_heads,
            "max_position_embeddings": spec.max_position_embeddings,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                "mrope_section": mrope_section(head_dim)},
            "tie_word_embeddings": spec.tie_embeddings,
            "bos_token_id": ids(ENDOFTEXT), "eos_token_id": ids(IM_END), "pad_token_id": ids(ENDOFTEXT),
        },
        vision_config={
            "depth": spec.vision_depth, "hidden_size": spec.vision_hidden_size,
            "intermediate_size": spec.vision_intermediate_size, "num_heads": spec.vision_heads,
            "out_hidden_size": spec.hidden_size, "patch_size": 14, "spatial_merge_size": 2,
            "temporal_patch_size": 2, "window_size": 112,
            "fullatt_block_indexes": [spec.vision_depth - 1],
        },
        image_token_id=ids(IMAGE_PAD), video_token_id=ids(VIDEO_PAD),
        vision_start_token_id=ids(VISION_START), vision_end_token_id=ids(VISION_END),
        tie_word_embeddings=spec.tie_embeddings,
    )


def build_model(config: Any, seed: int = 0) -> Any:
    """A randomly initialised ``Qwen2_5_VLForConditionalGeneration`` (fp32) with a generation config."""
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    text = config.get_text_config()
    model.generation_config = GenerationConfig(
        eos_token_id=text.eos_token_id, pad_token_id=text.pad_token_id, bos_token_id=text.bos_token_id,
        do_sample=False,
    )
    return model


def resize_ceiling(max_pixels: int) -> int:
    """``max_pixels`` with 2 % of slack. The processor's resize scales an image down by
    sqrt(h·w / max_pixels) and floors each side to the patch grid: with the bound exact, a side
    that should land on the grid lands a hair below it (144 px with max 56×56: 1.9999 → one 28 px
    token row instead of two), so single-entity photos got 1 image token and scenes 4."""
    return int(max_pixels) + int(max_pixels) // 50


def build_tiny(texts: Iterable[str] | None = None, spec: TinySpec | None = None) -> tuple[Any, Any]:
    """Tokenizer trained on ``texts`` (default: :func:`default_texts`), processor and random model."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from deepmmsearch.models.processor import make_processor

    spec = spec or TinySpec()
    tokenizer = train_tokenizer(texts if texts is not None else default_texts(), spec.vocab_size,
                                prefix_space=spec.prefix_space)
    image_processor = Qwen2VLImageProcessorPil(min_pixels=spec.min_pixels,
                                               max_pixels=resize_ceiling(spec.max_pixels))
    processor = make_processor(tokenizer, image_processor)
    model = build_model(tiny_config(tokenizer, spec), spec.seed)
    n = sum(p.numel() for p in model.parameters())
    log.info("built a tiny Qwen2.5-VL: %d parameters, vocab %d (%s)", n, len(tokenizer), asdict(spec))
    return model, processor
