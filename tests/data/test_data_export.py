"""RL exports (TRL prompts, veRL parquet) and the `data` command."""

from __future__ import annotations

import json

import pytest

from deepmmsearch.cli import main
from deepmmsearch.data.export import (
    content_blocks,
    prompt_text,
    trl_rows,
    verl_rows,
    write_trl,
    write_verl,
)
from deepmmsearch.prompts import get_prompts
from deepmmsearch.registry import DATASET


def test_content_blocks_put_the_image_where_the_placeholder_is():
    assert content_blocks("a<image>b") == [{"type": "text", "text": "a"}, {"type": "image"},
                                           {"type": "text", "text": "b"}]
    assert content_blocks("<image>q") == [{"type": "image"}, {"type": "text", "text": "q"}]
    assert content_blocks("no image") == [{"type": "text", "text": "no image"}]


def test_trl_rows(bench_specs):
    data = DATASET.build(bench_specs["okvqa"])
    rows = trl_rows(data.samples, "paper")
    row = rows[0]
    assert row["prompt"][0]["role"] == "user" and row["images"] == [data[0].image]
    blocks = row["prompt"][0]["content"]
    assert sum(b["type"] == "image" for b in blocks) == 1
    assert blocks[-1]["text"].endswith(data[0].question)
    assert row["answers"] == data[0].answers
    q = trl_rows(data.samples, "compact", prompt_style="question")[0]
    assert q["prompt"][0]["content"] == [{"type": "image"}, {"type": "text", "text": data[0].question}]


def test_write_trl_parquet_round_trips_with_datasets(bench_specs, tmp_path):
    datasets = pytest.importorskip("datasets")
    data = DATASET.build(bench_specs["aokvqa"])
    path = write_trl(data.samples, tmp_path / "trl.parquet", images="bytes")
    ds = datasets.load_dataset("parquet", data_files=path, split="train")
    assert len(ds) == 2 and ds[0]["images"][0].size == (12, 10)
    assert ds[0]["prompt"][0]["content"][1]["type"] == "image"
    assert ds[0]["answers"] == data[0].answers


def test_fvqa_to_verl_parquet(bench_specs, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    data = DATASET.build(bench_specs["fvqa"])
    path = write_verl(data.samples, tmp_path / "verl.parquet", agent_name="deepmmsearch_agent")
    rows = pq.read_table(path).to_pylist()
    assert len(rows) == 3
    r = rows[0]
    assert r["agent_name"] == "deepmmsearch_agent" and r["data_source"] == "fvqa"
    content = r["prompt"][0]["content"]
    assert content.count("<image>") == len(r["images"]) == 1  # veRL: one placeholder per image
    assert r["images"][0]["bytes"][:4] == b"\x89PNG"
    assert r["reward_model"]["ground_truth"] == "France"
    assert r["reward_model"]["candidate_answers"][:2] == ["France", "French Republic"]
    assert r["extra_info"]["index"] == 0 and r["extra_info"]["id"] == "fvqa_train_0"
    assert r["extra_info"]["search_required"] is False and rows[2]["extra_info"]["search_required"] is None
    paths = verl_rows(data.samples, images="path")
    assert paths[0]["images"][0]["bytes"] is None and paths[0]["images"][0]["path"] == data[0].image


def test_prompt_text_without_image():
    from deepmmsearch.types import Sample

    s = Sample("1", "Why?", ["x"])
    assert "<image>" not in prompt_text(s, get_prompts("paper"))


def test_data_load_command(bench, tmp_path, capsys):
    q = bench / "okvqa" / "OpenEnded_mscoco_val2014_questions.json"
    rc = main(["data", "load", "okvqa", f"path={q}", f"image_root={bench / 'okvqa/images'}", "limit=2",
               "--out", str(tmp_path / "s.jsonl"), "--write-ids", str(tmp_path / "ids.txt")])
    out = capsys.readouterr().out
    assert rc == 0 and "okvqa: 2 samples of 3" in out and "2 bad rows" in out
    assert "3 not yielded: 2 bad rows (1 malformed question, 1 no usable annotation), 1 missing image" in out
    assert len((tmp_path / "ids.txt").read_text().split()) == 2
    assert main(["data", "load", "okvqa", f"path={tmp_path / 'missing.json'}"]) == 2
    assert "not found" in capsys.readouterr().err


def test_data_export_and_score_commands(bench, tmp_path, capsys):
    fvqa = bench / "fvqa" / "fvqa_train.parquet"
    rc = main(["data", "export", "fvqa", f"path={fvqa}", f"cache_dir={tmp_path / 'img'}", "--format", "verl",
               "--out", str(tmp_path / "v.parquet"), "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["rows"] == 3
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"id": "1010", "prediction": "tennis"}) + "\n"
                     + json.dumps({"id": "1020", "answer": "cat"}) + "\nnot json\n")
    q = bench / "okvqa" / "OpenEnded_mscoco_val2014_questions.json"
    rc = main(["data", "score", "okvqa", f"path={q}", f"image_root={bench / 'okvqa/images'}",
               "--predictions", str(preds), "--json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert rc == 0 and summary["okvqa"] == {"accuracy": 50.0, "n": 2}
    # scoring keeps the sample whose image is missing (1040): two samples lack a prediction
    assert summary["_missing_predictions"] == 2 and "skipped" in captured.err


def test_data_score_needs_no_images_and_fails_loudly(bench, tmp_path, capsys):
    q = bench / "okvqa" / "OpenEnded_mscoco_val2014_questions.json"
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"id": "1040", "prediction": "nothing"}) + "\n")
    rc = main(["data", "score", "okvqa", f"path={q}", "--predictions", str(preds)])  # no image_root
    assert rc == 0 and "okvqa: 100.00% official (n=1)" in capsys.readouterr().out
    preds.write_text(json.dumps({"id": "nope", "prediction": "x"}) + "\n")
    assert main(["data", "score", "okvqa", f"path={q}", "--predictions", str(preds)]) == 2
    assert "none of the 1 prediction ids matches" in capsys.readouterr().err
    preds.write_text(json.dumps({"id": "0", "prediction": "Acme"}) + "\n")
    simple = bench / "simplevqa" / "test.parquet"
    assert main(["data", "score", "simplevqa", f"path={simple}", f"cache_dir={tmp_path / 'i'}",
                 "--predictions", str(preds)]) == 2
    assert "no official rule" in capsys.readouterr().err


@pytest.mark.parametrize("word", ["None", "null", "~"])
def test_null_and_none_mean_no_filter(bench, tmp_path, capsys, word):
    simple = bench / "simplevqa" / "test.parquet"
    rc = main(["data", "load", "simplevqa", f"path={simple}", f"cache_dir={tmp_path / 'i'}",
               f"language={word}", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["returned"] == 3 and report["filtered"] == {}
