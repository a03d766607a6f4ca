"""`deepmmsearch index images` and `deepmmsearch search image` on the local image index."""

from __future__ import annotations

import json

from deepmmsearch.cli import main
from deepmmsearch.tools.image.synthetic import make_picture, make_scene


def test_index_then_search_a_box_and_an_expression(gallery, tmp_path, capsys):
    assert main(["index", "images", str(gallery / "pages.jsonl"), "--out", str(tmp_path / "idx"),
                 "--no-progress", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["count"] > 0 and info["embedder"]["name"] == "grid"
    scene, boxes = make_scene([make_picture(4, 112), make_picture(9, 96)], size=(320, 256), seed=2)
    scene.save(tmp_path / "scene.png")
    box = ",".join(str(int(v)) for v in boxes[0].as_list())
    assert main(["search", "image", str(tmp_path / "scene.png"), "--index", str(tmp_path / "idx"),
                 "--box", box, "-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hits"][0]["url"] == "https://gallery.test/e4" and len(out["hits"]) == 3
    assert out["box"][0] <= boxes[0].x1
    fixed = json.dumps({"the left one": boxes[1].as_list()})
    assert main(["search", "image", str(tmp_path / "scene.png"), "--index", str(tmp_path / "idx"),
                 "--expr", "the left one", "--grounder", "fixed", "--grounder-option", f"boxes={fixed}",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hits"][0]["url"] == "https://gallery.test/e9" and out["grounder"] == "fixed"
    assert main(["search", "image", str(tmp_path / "scene.png"), "--index", str(tmp_path / "idx")]) == 0
    assert "hits" in capsys.readouterr().out


def test_cli_errors_are_clear(tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"nope")
    rc = main(["search", "image", str(tmp_path / "bad.png"), "--index", str(tmp_path)])
    assert rc != 0
    assert "cannot read image" in capsys.readouterr().err
