"""Reading SFT rows (export rows, bare trajectories, chat rows) and encoding them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepmmsearch.conversation.encoding import IGNORE_INDEX
from deepmmsearch.models.processor import ImageEncoder
from deepmmsearch.train.sft_data import TrajectoryCollator, encode_examples, read_examples


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_three_row_formats_give_the_same_conversation(sft_data, tmp_path):
    traj = sft_data[0][0]
    image = traj.image
    chat = {"id": "c", "images": [image], "messages": [
        {"role": m.role, "content": m.content} for m in traj.messages()]}
    path = _write(tmp_path / "rows.jsonl", [{"trajectory": traj.to_dict()}, traj.to_dict(), chat])
    a, b, c = read_examples(path)
    assert a.messages == b.messages == c.messages and a.images == c.images == [image]


def test_relative_images_resolve_against_the_data_folder(sft_data, tmp_path):
    traj = sft_data[0][0]
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "pic.png").write_bytes(Path(traj.image).read_bytes())
    row = {"messages": [{"role": "user", "content": "<image>Q?"},
                        {"role": "assistant", "content": "<reason>r</reason><answer>a</answer>"}],
           "images": ["pic.png"]}
    (ex,) = read_examples(_write(folder / "rows.jsonl", [row]))
    assert ex.images == [str(folder / "pic.png")]


def test_bad_rows_name_their_line(tmp_path):
    path = _write(tmp_path / "bad.jsonl", [{"messages": []}, {"nothing": 1}])
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        read_examples(path)
    with pytest.raises(FileNotFoundError):
        read_examples(tmp_path / "missing.jsonl")


def test_max_length_cuts_the_end_and_skips_prompt_only(tiny, sft_data, caplog):
    tok, images = tiny[1].tokenizer, ImageEncoder(tiny[1].image_processor)
    examples = read_examples(sft_data[1], limit=2)
    full = encode_examples(examples, tok, images)
    cut = encode_examples(examples, tok, images, max_length=len(full[0]["input_ids"]) - 5)
    assert cut[0]["input_ids"] == full[0]["input_ids"][:-5]
    assert encode_examples(examples, tok, images, max_length=10) == []
    assert "prompt alone" in caplog.text


def test_collator_pads_right_and_marks_image_tokens(tiny, sft_data):
    tok, images = tiny[1].tokenizer, ImageEncoder(tiny[1].image_processor)
    rows = encode_examples(read_examples(sft_data[1], limit=3), tok, images)
    batch = TrajectoryCollator(tok, images)(rows)
    n = [len(r["input_ids"]) for r in rows]
    assert batch["input_ids"].shape == (3, max(n))
    assert batch["attention_mask"].sum(1).tolist() == n
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    assert int(batch["mm_token_type_ids"].sum()) == int((batch["input_ids"] == pad).sum())
    merge = tiny[1].image_processor.merge_size ** 2
    assert int(batch["image_grid_thw"].prod(1).sum()) // merge == int((batch["input_ids"] == pad).sum())


def test_packing_gives_the_same_loss_in_fewer_rows(tiny, sft_data):
    """Packed rows (block-diagonal attention, per-example M-RoPE positions) give the model the
    same loss as the padded batch: no example attends to another, images stay in token order."""
    import torch

    model, proc = tiny
    tok, images = proc.tokenizer, ImageEncoder(proc.image_processor)
    examples = read_examples(sft_data[1], limit=4)
    full = encode_examples(examples, tok, images)
    prompt = min(r["labels"].index(next(x for x in r["labels"] if x != IGNORE_INDEX)) for r in full)
    half = encode_examples(examples, tok, images, max_length=prompt + 12)  # short rows: they pack
    rows = [full[0], half[1], full[2], half[3], half[0]]
    plain = TrajectoryCollator(tok, images)(rows)
    packed = TrajectoryCollator(tok, images, rope_index=model.model.get_rope_index)(rows)
    assert packed["input_ids"].shape[0] < len(rows)
    assert "attention_mask" not in packed and packed["position_ids"].shape[0] == 4
    assert int((packed["labels"] != IGNORE_INDEX).sum()) == int((plain["labels"] != IGNORE_INDEX).sum())
    assert int(packed["image_grid_thw"].prod(1).sum()) == int(plain["image_grid_thw"].prod(1).sum())
    model.eval()
    with torch.no_grad():
        a, b = model(**plain, use_cache=False).loss, model(**packed).loss
    assert torch.allclose(a, b, atol=1e-5), (float(a), float(b))
    # the same rows packed without the per-example positions would let examples see each other
    leaky = dict(packed, position_ids=None, attention_mask=torch.ones_like(packed["input_ids"]))
    leaky.pop("use_cache")
    with torch.no_grad():
        assert not torch.allclose(model(**leaky, use_cache=False).loss, a, atol=1e-4)


def test_pack_rows_never_overfills():
    from deepmmsearch.train.sft_data import pack_rows

    lengths = [7, 3, 9, 1, 5, 5, 2, 8, 4]
    bins = pack_rows(lengths, 10)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)
    assert len(bins) == 5  # 44 tokens: at least 5 bins of 10
