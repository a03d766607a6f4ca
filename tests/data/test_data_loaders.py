"""Benchmark loaders on fixture files in each official layout, malformed rows included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepmmsearch.data.benchmarks.base import DatasetError, ImageStore, select
from deepmmsearch.data.benchmarks.dynvqa import find_release
from deepmmsearch.data.benchmarks.evqa import split_answers
from deepmmsearch.registry import DATASET, ConfigError
from deepmmsearch.types import Sample

# name -> (samples returned, bad rows, missing images, filtered)
EXPECTED = {
    "infoseek": (5, 2, 2, {}),
    "evqa": (3, 1, 2, {}),
    "simplevqa": (2, 1, 1, {"language zh": 1}),
    "dynvqa": (2, 2, 1, {}),
    "okvqa": (3, 2, 1, {}),
    "aokvqa": (2, 2, 1, {}),
    "fvqa": (3, 1, 1, {}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_counts_bad_rows_and_missing_images(name, bench_specs):
    data = DATASET.build(bench_specs[name])
    n, bad, missing, filtered = EXPECTED[name]
    rep = data.report
    assert (len(data), rep.bad_rows, rep.missing_images, rep.filtered) == (n, bad, missing, filtered)
    assert rep.returned == rep.loaded == n and rep.problems
    for s in data:
        assert s.source == name and s.question and s.answers
        assert s.image and Path(s.image).is_file()
        assert all(isinstance(a, str) and a for a in s.answers)
        assert len(set(s.answers)) == len(s.answers)
    assert name in rep.summary()
    json.dumps(rep.to_dict())
    # every row read is yielded or counted under one reason
    assert rep.rows == rep.loaded + rep.not_yielded
    assert rep.not_yielded == rep.bad_rows + rep.missing_images + rep.duplicates + sum(filtered.values())
    assert sum(n for k, n in rep.skipped.items() if k.startswith("bad row: ")) == bad


def test_infoseek_types_numeric_range_and_duplicates(bench_specs):
    data = DATASET.build(bench_specs["infoseek"])
    by_id = {s.id: s for s in data}
    assert data.report.duplicates == 1
    num = by_id["infoseek_val_00002"]
    assert num.question_type == "numerical" and num.metadata["numeric_range"] == [297.0, 363.0]
    assert num.answers[0] == "330 (any value from 297 to 363)" and "330" in num.answers
    assert by_id["infoseek_val_00001"].answers == ["Seine", "Seine River"]
    assert by_id["infoseek_val_00003"].image.endswith("shard1/oven_0003.jpg")  # via the id map
    assert by_id["infoseek_val_00001"].split == "val"
    # the OVEN snapshot spreads images over sub-folders: found without a map entry
    assert by_id["infoseek_val_00008"].image.endswith("shard02/08/oven_0008.jpg")
    assert by_id["infoseek_val_00008"].metadata["numeric_range"] == [36.0, 44.0]  # the first range
    assert by_id["infoseek_val_00009"].answers == ["Seine", "Seine River"]  # aliases de-duplicated
    only = DATASET.build({**bench_specs["infoseek"], "data_split": "unseen_entity"})
    assert {s.id for s in only} == {"infoseek_val_00002", "infoseek_val_00003", "infoseek_val_00009"}
    bare = DATASET.build({k: v for k, v in bench_specs["infoseek"].items() if k not in ("qtype", "image_map")})
    assert {s.id: s.question_type for s in bare}["infoseek_val_00002"] == "numerical"
    assert "no qtype file" in bare.report.summary()
    assert "infoseek_val_00003" in bare.ids()  # shard1/oven_0003.jpg found by the sub-folder search


def test_evqa_multi_answer_stays_whole_and_all_images(bench_specs):
    data = DATASET.build(bench_specs["evqa"])
    multi = next(s for s in data if s.question_type == "multi_answer")
    assert multi.answers == ["insects and seeds"]
    assert multi.metadata["answer_parts"] == [["insects", "seeds"]]
    assert split_answers("a|b && c && d|a") == (["a", "b, c and d"], [["a"], ["b", "c", "d"]])
    no_2hop = DATASET.build({**bench_specs["evqa"], "question_types": ["templated", "multi_answer"]})
    assert {s.question_type for s in no_2hop} == {"templated", "multi_answer"}
    assert no_2hop.report.filtered == {"question_type 2_hop": 1, "question_type automatic": 1}
    every = DATASET.build({**bench_specs["evqa"], "all_images": True})
    assert {s.id for s in every} >= {"evqa_test_0_0", "evqa_test_0_1"}


def test_dynvqa_versions_and_languages(bench):
    root = bench / "dynvqa/dataset"
    assert find_release(root, "en", "latest").name == "DynVQA_en.202502.jsonl"
    assert find_release(root, "en", "202412").name == "DynVQA_en.202412.jsonl"
    with pytest.raises(DatasetError, match="202001"):
        find_release(root, "en", "202001")
    old = DATASET.build({"name": "dynvqa", "path": str(root), "version": 202412,
                         "image_root": str(bench / "dynvqa/images"), "missing_image": "keep"})
    assert [s.answers for s in old] == [["Alice"], ["1200"]]  # integers cast to str
    assert old[0].metadata["version"] == "202412" and old[0].split == "en.202412"
    assert old[1].image is None and old.report.missing_images == 1
    default = DATASET.build({"name": "dynvqa", "path": str(root), "missing_image": "keep"})
    assert default[0].metadata["version"] == "202412"  # the paper's release, not the newest
    new = DATASET.build({"name": "dynvqa", "path": str(root), "version": "latest",
                         "image_root": str(bench / "dynvqa/images")})
    assert "en3" in new.ids()  # kept (the official script scores every row); image found by id
    assert "1 kept row has answers only in Chinese" in new.report.summary()
    dropped = DATASET.build({"name": "dynvqa", "path": str(root), "version": "latest",
                             "image_root": str(bench / "dynvqa/images"), "drop_foreign_answers": True})
    assert "en3" not in dropped.ids() and dropped.report.filtered == {"answers only in Chinese": 1}
    assert new[0].metadata["golden_query"] == "company CEO"
    zh = DATASET.build({"name": "dynvqa", "path": str(root), "language": "zh",
                        "image_root": str(bench / "dynvqa/images")})
    assert zh.ids() == ["zh1"]


def test_okvqa_and_aokvqa_keep_all_answers(bench_specs):
    ok = DATASET.build(bench_specs["okvqa"])
    tennis = ok[0]
    assert len(tennis.metadata["all_answers"]) == 10 and tennis.answers[0] == "tennis"
    assert tennis.split == "val2014"
    a = DATASET.build(bench_specs["aokvqa"])
    first = a[0]
    assert first.choices == ["umbrella", "bat", "kite", "phone"]
    assert first.metadata["correct_choice_idx"] == 0 and len(first.metadata["all_answers"]) == 10


def test_fvqa_aliases_images_and_categories(bench_specs, tmp_path):
    data = DATASET.build(bench_specs["fvqa"])
    by_id = {s.id: s for s in data}
    assert by_id["fvqa_train_0"].answers[:2] == ["France", "French Republic"]
    assert "\U0001F1EB\U0001F1F7" in by_id["fvqa_train_0"].answers
    assert by_id["fvqa_train_0"].search_required is False
    assert by_id["fvqa_train_1"].search_required is True
    assert by_id["fvqa_train_4"].search_required is None
    assert by_id["fvqa_train_1"].image.endswith(".jpg") and by_id["fvqa_train_0"].image.endswith(".png")
    files = sorted((tmp_path / "img").rglob("*.*"))
    again = DATASET.build(bench_specs["fvqa"])  # same bytes: nothing new written
    assert sorted((tmp_path / "img").rglob("*.*")) == files and again.ids() == data.ids()


def test_seeded_limit_ids_and_roundtrip(bench, tmp_path):
    spec = {"name": "jsonl", "path": str(bench.parent / "distill/questions.jsonl")}
    full = DATASET.build(spec)
    a = DATASET.build({**spec, "limit": 7, "seed": 3})
    b = DATASET.build({**spec, "limit": 7, "seed": 3})
    c = DATASET.build({**spec, "limit": 7, "seed": 4})
    assert a.ids() == b.ids() != c.ids() and len(a) == 7
    order = full.ids()
    assert a.ids() == sorted(a.ids(), key=order.index)  # file order kept
    assert a.report.loaded == 24 and a.report.returned == 7
    ids_file = tmp_path / "ids.txt"
    a.write_ids(ids_file)
    assert DATASET.build({**spec, "ids": str(ids_file)}).ids() == a.ids()
    a.write_jsonl(tmp_path / "s.jsonl")
    back = DATASET.build({"name": "jsonl", "path": str(tmp_path / "s.jsonl")})
    assert [s.to_dict() for s in back] == [s.to_dict() for s in a]
    assert select(full.samples, limit=100) == full.samples


def test_missing_files_and_bad_options_are_clear_errors(bench, tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        DATASET.build({"name": "okvqa", "path": str(tmp_path / "nope.json")})
    (tmp_path / "q.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        DATASET.build({"name": "aokvqa", "path": str(tmp_path / "q.json")})
    with pytest.raises(ConfigError, match="unknown option"):
        DATASET.validate({"name": "okvqa", "path": "x", "imgae_root": "y"})
    with pytest.raises(DatasetError, match="missing_image"):
        DATASET.build({"name": "jsonl", "path": str(bench.parent / "distill/questions.jsonl"),
                       "missing_image": "ignore"})


def test_image_store_accepts_base64_bytes_and_rejects_garbage(tmp_path):
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (3, 3), "red").save(buf, format="PNG")
    store = ImageStore(tmp_path)
    p1, _ = store.save(buf.getvalue())
    p2, _ = store.save("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())
    p3, _ = store.save({"bytes": buf.getvalue(), "path": "x.png"})
    assert p1 == p2 == p3 and store.written == 1
    assert store.save(b"\x00garbage")[0] is None and store.save(None)[0] is None


def test_jsonl_loader_simple_rows(tmp_path):
    rows = [{"question_id": 7, "question": "Q?", "answer": "A", "search_required": "true"},
            {"question": "", "answer": "x"}, {"answers": ["y"]}]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = DATASET.build({"name": "jsonl", "path": str(tmp_path / "q.jsonl"), "source": "mine"})
    assert [(s.id, s.answers, s.search_required, s.source) for s in data] == [("7", ["A"], True, "mine")]
    assert data.report.bad_rows == 2
    assert isinstance(data[0], Sample)


def test_evqa_missing_inaturalist_map_names_the_file(bench_specs):
    data = DATASET.build(bench_specs["evqa"])
    msg = next(m for m in data.report.problems if "2701234" in m)
    assert "iNaturalist 2021" in msg and "train.json" in msg and "image_map" in msg
    msg = next(m for m in data.report.problems if "zzz999" in m)
    assert "train/{a}/{b}/{c}/{id}.jpg" in msg
    assert data.report.skipped["missing image: not found"] == 2


def test_loaders_share_one_strict_signature():
    import inspect

    from deepmmsearch.data.benchmarks.base import COMMON_OPTIONS
    from deepmmsearch.data.benchmarks.okvqa import load_okvqa

    for name in ("infoseek", "evqa", "simplevqa", "dynvqa", "okvqa", "aokvqa", "fvqa", "simweb", "jsonl"):
        params = inspect.signature(DATASET.resolve(name)).parameters
        names = list(params)
        assert names[:1] == ["path"] and names[-len(COMMON_OPTIONS):] == list(COMMON_OPTIONS)
        assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in params.values())
    with pytest.raises(TypeError, match="imgae_root"):
        load_okvqa("x.json", imgae_root="y")
    with pytest.raises(ConfigError, match="did you mean 'image_root'"):
        DATASET.validate({"name": "evqa", "path": "x", "imgae_root": "y"})
