"""Fixtures for the image area: a generated gallery and its index, tiny random detectors and a
tiny random CLIP (built from configs, saved to a temp folder; nothing is downloaded)."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest

from deepmmsearch.tools.image.synthetic import make_picture

N_GALLERY = 80


@pytest.fixture(scope="session")
def gallery(tmp_path_factory) -> Path:
    """A folder with N_GALLERY generated pictures and ``pages.jsonl`` describing them."""
    root = tmp_path_factory.mktemp("gallery")
    (root / "img").mkdir()
    with open(root / "pages.jsonl", "w", encoding="utf-8") as fh:
        for i in range(N_GALLERY):
            make_picture(i, size=96 + 16 * (i % 3)).save(root / "img" / f"pic{i:03d}.png")
            fh.write(json.dumps({"image": f"img/pic{i:03d}.png", "title": f"Entity {i}",
                                 "url": f"https://gallery.test/e{i}", "id": f"e{i}",
                                 "text": f"Entity {i} is a generated picture number {i}."}) + "\n")
    return root


@pytest.fixture(scope="session")
def image_index(gallery, tmp_path_factory) -> Path:
    from deepmmsearch.tools.image.local import build_index

    out = tmp_path_factory.mktemp("idx") / "index"
    build_index(gallery / "pages.jsonl", out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_gdino(tmp_path_factory) -> Path:
    """A random Grounding DINO (0.4M params) with a hand-written BERT vocabulary."""
    torch = pytest.importorskip("torch")
    tr = pytest.importorskip("transformers")
    torch.manual_seed(0)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "the", "white", "bird", "flying",
             "over", "water", "a", "red", "car", "on", "left", "right", "of", "logo", "blue"]
    tok = tr.BertTokenizer(vocab={w: i for i, w in enumerate(words)}, do_lower_case=True)
    cfg = tr.GroundingDinoConfig(
        backbone_config=tr.SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                                      out_features=["stage2", "stage3", "stage4"]),
        text_config=tr.BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=64),
        d_model=32, num_queries=20, encoder_layers=1, decoder_layers=2, max_text_len=32,
        encoder_ffn_dim=64, decoder_ffn_dim=64, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_n_points=2, decoder_n_points=2)
    out = tmp_path_factory.mktemp("gdino")
    tr.GroundingDinoForObjectDetection(cfg).save_pretrained(out)
    ip = tr.GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    tr.GroundingDinoProcessor(image_processor=ip, tokenizer=tok).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_owlv2(tmp_path_factory) -> Path:
    """A random OWLv2 with a character-level CLIP tokenizer (start token id != 0: see backends.md)."""
    torch = pytest.importorskip("torch")
    tr = pytest.importorskip("transformers")
    torch.manual_seed(0)
    toks = (["!", "<|startoftext|>", "<|endoftext|>"] + list(string.ascii_lowercase)
            + [c + "</w>" for c in string.ascii_lowercase + ".,"])
    vocab = {t: i for i, t in enumerate(toks)}
    tok = tr.CLIPTokenizer(vocab=vocab, merges=[], bos_token="<|startoftext|>",
                           eos_token="<|endoftext|>", pad_token="!", unk_token="<|endoftext|>")
    cfg = tr.Owlv2Config(
        text_config={"vocab_size": len(vocab), "hidden_size": 16, "intermediate_size": 32,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 16,
                     "pad_token_id": 0, "bos_token_id": vocab["<|startoftext|>"],
                     "eos_token_id": vocab["<|endoftext|>"]},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 64, "patch_size": 16},
        projection_dim=16)
    out = tmp_path_factory.mktemp("owlv2")
    model = tr.Owlv2ForObjectDetection(cfg)
    with torch.no_grad():  # boxes = the patch-grid prior: spread over the image, not saturated
        model.box_head.dense2.weight.zero_()
        model.box_head.dense2.bias.zero_()
    model.save_pretrained(out)
    ip = tr.Owlv2ImageProcessor(size={"height": 64, "width": 64})
    tr.Owlv2Processor(image_processor=ip, tokenizer=tok).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    tr = pytest.importorskip("transformers")
    torch.manual_seed(0)
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    cfg = tr.CLIPConfig(text_config={"vocab_size": 100, "max_position_embeddings": 16, **small},
                        vision_config={"image_size": 32, "patch_size": 8, **small}, projection_dim=16)
    out = tmp_path_factory.mktemp("clip")
    tr.CLIPModel(cfg).save_pretrained(out)
    tr.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return out


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared CPU OpenMP spinning costs 10-20x."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
