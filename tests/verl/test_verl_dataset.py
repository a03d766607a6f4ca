"""Our parquet (``deepmmsearch data export ... --format verl``) → veRL's RLHFDataset → our loop."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("verl.experimental.agent_loop",
                    reason="veRL is tested in its own environment: make test-verl")

from deepmmsearch.data.export import write_verl
from deepmmsearch.types import Sample

SCENE = str(Path(__file__).resolve().parents[1] / "fixtures" / "scene.png")


def samples() -> list[Sample]:
    return [Sample("q1", "What is the wingspan of this bird?", ["131 to 170 cm", "1.3-1.7 m"],
                   image=SCENE, source="fvqa", search_required=True),
            Sample("q2", "What colour is the sky?", ["blue"], image=SCENE, source="fvqa")]


def dataset(path: str, processor, **config):
    from omegaconf import OmegaConf

    from deepmmsearch.train.verl.dataset import DeepMMSearchRLDataset

    cfg = OmegaConf.create({"max_prompt_length": 2048, "return_raw_chat": True,
                            "filter_overlong_prompts": True, "filter_overlong_prompts_workers": 1,
                            "return_multi_modal_inputs": False, **config})
    return DeepMMSearchRLDataset(path, processor.tokenizer, cfg, processor=processor)


@pytest.mark.parametrize("images", ["bytes", "path"])
def test_parquet_to_rlhf_dataset(tmp_path, processor, images):
    path = write_verl(samples(), tmp_path / "train.parquet", images=images)
    ds = dataset(path, processor, cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 2
    row = ds[0]
    assert row["agent_name"] == "deepmmsearch_agent" and row["data_source"] == "fvqa"
    blocks = row["raw_prompt"][0]["content"]
    kinds = [b["type"] for b in blocks]
    assert kinds.count("image") == 1 and kinds[-1] == "text"
    assert blocks[-1]["text"].endswith("What is the wingspan of this bird?")
    assert row["reward_model"]["ground_truth"] == "131 to 170 cm"
    assert list(row["extra_info"]["answers"]) == ["131 to 170 cm", "1.3-1.7 m"]
    assert row["tools_kwargs"]["img_search"]["create_kwargs"]["question"] == row["extra_info"]["question"]
    images_, videos, _ = ds._process_multi_modal_info(row["raw_prompt"], 14, ds.config)
    assert videos is None and len(images_) == 1 and images_[0].mode == "RGB"


def test_overlong_prompts_are_filtered(tmp_path, processor):
    path = write_verl(samples(), tmp_path / "train.parquet")
    assert len(dataset(path, processor, max_prompt_length=16, cache_dir=str(tmp_path / "c"))) == 0


async def test_dataset_row_drives_our_loop(tmp_path, processor, make_loop, fake_server):
    """A dataset row as the agent-loop worker passes it (its columns as keyword arguments)."""
    path = write_verl(samples(), tmp_path / "train.parquet")
    row = dataset(path, processor, cache_dir=str(tmp_path / "cache"))[0]
    search = "<reason>known bird</reason><text_search>great egret wingspan</text_search>"
    server = fake_server([search, "<reason>found</reason><answer>131 to 170 cm</answer>"])
    loop = make_loop(server)
    kwargs = {k: v for k, v in row.items() if k not in ("agent_name", "dummy_tensor")}
    out = await loop.run({"temperature": 1.0, "logprobs": True}, **kwargs)
    assert out.extra_fields["dmm_answer"] == "131 to 170 cm"
    assert out.extra_fields["dmm_stop_reason"] == "answer"
    assert [c["images"] for c in server.calls] == [1, 1]

    from deepmmsearch.train.verl.reward import compute_score

    solution = processor.tokenizer.decode(out.response_ids, skip_special_tokens=True)
    score = await compute_score(row["data_source"], solution, row["reward_model"]["ground_truth"],
                                {**row["extra_info"], **out.extra_fields})
    assert score["score"] == pytest.approx(1.0)
