"""The tiny Qwen2.5-VL builder, the processor without torchvision and model directories."""

from __future__ import annotations

import pytest
import torch

from deepmmsearch.models.loading import count_parameters, load_model_and_processor
from deepmmsearch.models.processor import ImageEncoder, image_token_count
from deepmmsearch.models.tiny import PROTOCOL_TOKENS, TinySpec, mrope_section
from deepmmsearch.registry import ConfigError


def test_sizes_and_special_tokens(tiny):
    model, processor = tiny
    assert 100_000 < count_parameters(model) < 400_000
    tok = processor.tokenizer
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    cfg = model.config
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.get_text_config().vocab_size == len(tok)
    assert model.generation_config.eos_token_id == tok.eos_token_id


def test_protocol_tags_are_single_normal_tokens(tiny):
    tok = tiny[1].tokenizer
    for tag in PROTOCOL_TOKENS:
        assert tok.tokenize(f"x{tag}y")[1] == tag
    text = "<reason>r</reason><answer>1984</answer>"
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == text  # tags survive, like in rewards
    assert [t for t in tok.tokenize("1984") if t.strip("Ġ")] == ["1", "9", "8", "4"]


def test_image_token_counts(tiny):
    ip = tiny[1].image_processor
    assert image_token_count(ip, 56, 56) == 4
    assert image_token_count(ip, 112, 112) == 16
    assert image_token_count(ip, 400, 300) <= 16  # max_pixels caps it


def test_corrupt_image_is_a_clear_error(tiny, tmp_path):
    from deepmmsearch.tools.crop import ImageLoadError

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageLoadError):
        ImageEncoder(tiny[1].image_processor).token_counts([str(bad)])


def test_directory_round_trip(tiny, tiny_dir):
    model, processor = tiny
    loaded, proc = load_model_and_processor(tiny_dir, device="cpu", dtype="float32")
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    text = "<reason>It is a Kavo.</reason><text_search>Kavo top speed</text_search>"
    assert proc.tokenizer.encode(text) == processor.tokenizer.encode(text)
    assert proc.image_processor.size == processor.image_processor.size
    assert not loaded.training


def test_pixel_bounds_can_be_overridden_at_load(tiny_dir):
    _, proc = load_model_and_processor(tiny_dir, device="cpu", max_pixels=56 * 56)
    assert image_token_count(proc.image_processor, 112, 112) == 4


def test_spec_validation():
    with pytest.raises(ConfigError):
        TinySpec(hidden_size=60, num_heads=4)
    with pytest.raises(ConfigError):
        TinySpec(num_heads=4, num_kv_heads=3)
    assert sum(mrope_section(16)) == 8


def test_hub_id_offline_fails_without_network():
    """HF_HUB_OFFLINE=1 (tests/conftest.py): a hub id not in the cache is an error, not a download."""
    with pytest.raises(OSError):
        load_model_and_processor("Qwen/Qwen2.5-VL-7B-Instruct", device="cpu")


def test_fixed_resolution_gives_every_image_the_same_token_grid():
    """min_pixels == max_pixels (the quickstart's fixed 56×56 / 112×112): a 144 px photo gets the
    same grid as a 224 px scene (the exact bound used to floor it to one 28 px token)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from deepmmsearch.models.tiny import resize_ceiling

    for side, tokens in ((56, 4), (112, 16)):
        exact = Qwen2VLImageProcessorPil(min_pixels=side * side, max_pixels=side * side)
        assert image_token_count(exact, 144, 144) < tokens  # the floor this guards against
        ip = Qwen2VLImageProcessorPil(min_pixels=side * side, max_pixels=resize_ceiling(side * side))
        assert {image_token_count(ip, s, s) for s in (side, 144, 160, 176, 224, 320)} == {tokens}
