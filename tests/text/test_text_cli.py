"""``deepmmsearch index text`` / ``search text`` (and the image subcommands' plumbing), in-process."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from deepmmsearch import cli

CORPUS = "tests/fixtures/text_corpus.jsonl"


@pytest.mark.parametrize("engine", ["tantivy", "bm25s"])
def test_index_then_search_text(engine, tmp_path, capsys):
    out = tmp_path / "idx"
    assert cli.main(["index", "text", CORPUS, "--out", str(out), "--engine", engine]) == 0
    captured = capsys.readouterr()
    assert f"indexed 10 documents with {engine}" in captured.out
    assert "100%" in captured.err  # the progress bar
    assert cli.main(["search", "text", "Eiffel tower height", "--index", str(out), "-k", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("1. Eiffel Tower") and "https://en.example.org/wiki/Eiffel_Tower" in text
    assert cli.main(["search", "text", "Eiffel", "--index", str(out), "-k", "5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["query"] == "Eiffel" and data["k"] == 5 and data["hits"][0]["title"] == "Eiffel Tower"
    assert set(data["hits"][0]) >= {"title", "url", "snippet", "score", "date"}


def test_index_json_and_overwrite(tmp_path, capsys):
    out = tmp_path / "idx"
    assert cli.main(["index", "text", CORPUS, "--out", str(out), "--no-progress", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n_docs"] == 10 and "100%" not in captured.err
    assert cli.main(["index", "text", CORPUS, "--out", str(out), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["index", "text", CORPUS, "--out", str(out), "--overwrite", "--no-progress"]) == 0


def test_clear_errors(tmp_path, capsys):
    assert cli.main(["search", "text", "q", "--index", str(tmp_path / "missing")]) == 2
    assert "text index not found" in capsys.readouterr().err
    assert cli.main(["index", "text", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert "corpus not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["index", "text", CORPUS, "--out", str(tmp_path / "o"), "--engine", "lucene"])


def test_no_results_is_said(tmp_path, capsys):
    out = tmp_path / "idx"
    cli.main(["index", "text", CORPUS, "--out", str(out), "--no-progress"])
    capsys.readouterr()
    assert cli.main(["search", "text", "zzzqqq ((", "--index", str(out)]) == 0
    assert capsys.readouterr().out.startswith("no results")


def test_image_subcommands_call_the_local_image_index(tmp_path, capsys, scene_image):
    pytest.importorskip("faiss")
    pics = tmp_path / "pics"
    pics.mkdir()
    shutil.copy(scene_image, pics / "scene.png")
    Image.open(scene_image).rotate(90).save(pics / "rotated.png")
    out = tmp_path / "img_idx"
    assert cli.main(["index", "image", str(pics), "--out", str(out), "--no-progress"]) == 0
    assert "indexed 2 images" in capsys.readouterr().out
    assert cli.main(["search", "image", scene_image, "--index", str(out), "-k", "1", "--json",
                     "--crop", "the bird", "--grounder", "fixed",
                     "--grounder-option", "box=[20, 20, 90, 80]"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["grounder"] == "fixed" and len(data["box"]) == 4 and len(data["hits"]) == 1
    assert cli.main(["search", "image", scene_image, "--index", str(out), "--box", "9,9,1,1"]) == 2
    assert "--box must be" in capsys.readouterr().err
