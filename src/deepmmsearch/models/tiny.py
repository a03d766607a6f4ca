"""A tiny random Qwen-VL built locally (nothing downloaded): tests, benchmarks, the quickstart.

::

    from deepmmsearch.models.tiny import TinySpec, build_tiny, default_texts
    model, processor = build_tiny(default_texts(), TinySpec())   # ≈ 0.2M parameters, ≈ 1 s
    save_model_dir(model, processor, "runs/tiny")                 # models/loading.py
    load_model_and_processor("runs/tiny")                         # what the hf policy does

The tokenizer is a byte-level BPE trained with ``tokenizers`` on the given texts: Qwen's special
tokens (``<|im_start|>``, ``<|image_pad|>`` …) are special tokens, the protocol tags
(``<reason>``, ``</text_search>``, ``<information>`` …) are *normal* added tokens (one token each,
kept when decoding, so reward functions see them), and digits split one per token. The model is
the family's class (``TinySpec.family``: ``qwen2_5_vl`` by default, ``qwen3_vl``, ``qwen3_5``; see
:mod:`deepmmsearch.conversation.families`) from a config of the given sizes, with random weights.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from deepmmsearch.conversation.families import FAMILIES, ModelFamily, family_for
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
    """Sizes of a tiny Qwen-VL (defaults: ≈ 0.2M parameters; see reference/speedrun.md)."""

    family: str = "qwen2_5_vl"  # a conversation.families name: qwen2_5_vl | qwen3_vl | qwen3_5
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
    capital_pieces: bool = False  # tokenizer: a capitalised word's first two letters are one piece
    seed: int = 0

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"tiny.family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
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


def train_tokenizer(texts: Iterable[str], vocab_size: int = 500, prefix_space: bool = False,
                    capital_pieces: bool = False) -> Any:
    """A byte-level BPE (``PreTrainedTokenizerFast``) trained on ``texts``; see the module doc.

    ``prefix_space``: every stretch of text between two tags starts with a space, so a word right
    after a tag (``<text_search>Kelumo``, ``<answer>1807``) is split exactly as inside a sentence
    (``… of Kelumo is 1807.``) — a tiny model then copies names and numbers out of
    ``<information>`` token for token. Decoding keeps that space (``<answer> 1807</answer>``);
    the protocol parser strips it.

    ``capital_pieces``: a capitalised word's capital and the letter after it are split off as a
    piece of their own (``Guzeholm`` → ``ĠGu`` + ``zeholm``), so BPE learns them as one token.
    Without it, generated names that share no syllable with the training text start with a lone
    capital (``ĠG uze holm``): the first piece of every name is one of a handful of tokens, and
    the tiny model's most frequent copy error is that piece (docs/LOG.md, Quickstart).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    digits = pre_tokenizers.Digits(individual_digits=True)
    if prefix_space:  # byte-level first: the prefix space goes once per stretch, not per digit
        steps = [pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True), digits]
    else:
        steps = [digits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    if capital_pieces:  # on the byte-level string: a space is "Ġ" there
        steps.append(pre_tokenizers.Split(Regex("Ġ?[A-Z][a-z]"), behavior="isolated"))
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


def _extra(keys: dict[str, Any], spec: TinySpec) -> dict[str, Any]:
    """A family's extra config keys, with the size-dependent ones worked out for the spec."""
    computed = {
        ("fullatt_block_indexes", "last"): [spec.vision_depth - 1],
        ("deepstack_visual_indexes", "first"): [0],
        ("layer_types", "alternate"): [("linear_attention", "full_attention")[i % 2]
                                       for i in range(spec.num_layers)],
    }
    return {k: computed.get((k, v), v) if isinstance(v, str) else v for k, v in keys.items()}


def tiny_config(tokenizer: Any, spec: TinySpec) -> Any:
    """The family's config (``Qwen2_5_VLConfig``, ``Qwen3VLConfig`` …) of the spec's sizes, with
    token ids taken from ``tokenizer``."""
    import transformers

    fam = family_for(spec.family)
    ids = tokenizer.convert_tokens_to_ids
    head_dim = spec.hidden_size // spec.num_heads
    text = {
        "vocab_size": len(tokenizer), "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size, "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads, "num_key_value_heads": spec.num_kv_heads,
        "max_position_embeddings": spec.max_position_embeddings,
        "tie_word_embeddings": spec.tie_embeddings,
        "bos_token_id": ids(ENDOFTEXT), "eos_token_id": ids(IM_END), "pad_token_id": ids(ENDOFTEXT),
        **_extra(dict(fam.tiny_text), spec),
    }
    rope: dict[str, Any] = {"rope_type": "default", "rope_theta": 10000.0}
    for key in ("mrope_interleaved", "partial_rotary_factor"):
        if key in text:
            rope[key] = text.pop(key)
    rotary = int(head_dim * rope.get("partial_rotary_factor", 1.0))
    text["rope_parameters"] = {**rope, "mrope_section": mrope_section(rotary)}
    if fam.name != "qwen2_5_vl":  # the later families take head_dim explicitly (default 128 / 256)
        text["head_dim"] = head_dim
    vision = {
        "depth": spec.vision_depth, "hidden_size": spec.vision_hidden_size,
        "intermediate_size": spec.vision_intermediate_size, "num_heads": spec.vision_heads,
        "out_hidden_size": spec.hidden_size, "patch_size": fam.patch_size,
        "spatial_merge_size": fam.merge_size, "temporal_patch_size": 2,
        **_extra(dict(fam.tiny_vision), spec),
    }
    config_class = getattr(transformers, fam.config_class)
    return config_class(
        text_config=text, vision_config=vision,
        image_token_id=ids(IMAGE_PAD), video_token_id=ids(VIDEO_PAD),
        vision_start_token_id=ids(VISION_START), vision_end_token_id=ids(VISION_END),
        tie_word_embeddings=spec.tie_embeddings,
    )


def build_model(config: Any, seed: int = 0) -> Any:
    """A randomly initialised model of the config's family (fp32) with a generation config."""
    import torch
    import transformers
    from transformers import GenerationConfig

    torch.manual_seed(seed)
    model = getattr(transformers, family_for(config.model_type).model_class)(config)
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


def tiny_image_processor(fam: ModelFamily, spec: TinySpec) -> Any:
    """The PIL Qwen-VL image processor (no torchvision) with the family's patch size and norms,
    and the spec's pixel bounds (the upper one with :func:`resize_ceiling`'s slack)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(
        min_pixels=spec.min_pixels, max_pixels=resize_ceiling(spec.max_pixels), patch_size=fam.patch_size,
        merge_size=fam.merge_size, temporal_patch_size=2, image_mean=list(fam.image_mean),
        image_std=list(fam.image_std),
    )


def build_tiny(texts: Iterable[str] | None = None, spec: TinySpec | None = None) -> tuple[Any, Any]:
    """Tokenizer trained on ``texts`` (default: :func:`default_texts`), processor and random model."""
    from deepmmsearch.models.processor import make_processor

    spec = spec or TinySpec()
    fam = family_for(spec.family)
    tokenizer = train_tokenizer(texts if texts is not None else default_texts(), spec.vocab_size,
                                prefix_space=spec.prefix_space, capital_pieces=spec.capital_pieces)
    processor = make_processor(tokenizer, tiny_image_processor(fam, spec), family=fam)
    model = build_model(tiny_config(tokenizer, spec), spec.seed)
    n = sum(p.numel() for p in model.parameters())
    log.info("built a tiny %s: %d parameters, vocab %d (%s)", fam.label, n, len(tokenizer), asdict(spec))
    return model, processor
