"""Grounders: one contract over every backend, then the HF detectors' pre/post-processing and
coordinate conversion (tiny random models, no download), and the self-grounder's frames."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from deepmmsearch.registry import GROUNDER, ConfigError
from deepmmsearch.tools.grounding.basic import SelfGrounder, qwen_resized_size
from deepmmsearch.types import Box

ODD_EXPRESSIONS = ["the white bird flying over the water", "", "   \n\t", "🐦 鸟 Ümlaut ½",
                   "x" * 3000, "[10, 20, 30, 40]", '{"bbox_2d": [1, 2, 3000, 4000]}', "<img>",
                   "a. b. c. . ..", "the bird; DROP TABLE", "[nan, 1, 2, 3]"]
IMAGES = [(200, 120, "RGB"), (7, 5, "RGB"), (96, 300, "L")]


def _tiny_world(tmp_path_factory):
    build = pytest.importorskip("deepmmsearch.simweb.build")
    root = tmp_path_factory.mktemp("world")
    build.build_world(root, seed=0, size="small", entities=20, indexes=False, overwrite=True,
                      progress=False, jobs=1)
    return root


@pytest.fixture(scope="module")
def grounders(tiny_gdino, tiny_owlv2, tmp_path_factory):
    world = _tiny_world(tmp_path_factory)
    specs = {
        "fixed": {"name": "fixed"},
        "self": {"name": "self"},
        "self-qwen": {"name": "self", "coords": "qwen2.5-vl"},
        "grounding-dino": {"name": "grounding-dino", "model": str(tiny_gdino), "threshold": 0.0,
                           "text_threshold": 0.0, "shortest_edge": 64},
        "owlv2": {"name": "owlv2", "model": str(tiny_owlv2), "threshold": 0.0},
        "simweb": {"name": "simweb", "world": str(world)},
    }
    assert {s["name"] for s in specs.values()} == set(GROUNDER.names())  # every registered backend
    return {k: GROUNDER.build(v) for k, v in specs.items()}, world


@pytest.mark.parametrize("backend", ["fixed", "self", "self-qwen", "grounding-dino", "owlv2", "simweb"])
async def test_grounder_contract(grounders, backend):
    """Box within the image or None; never raises, whatever the expression."""
    g = grounders[0][backend]
    found = 0
    for w, h, mode in IMAGES:
        image = Image.new(mode, (w, h), 128)
        for expr in ODD_EXPRESSIONS:
            box = await g.ground(image, expr)
            assert box is None or isinstance(box, Box), (expr, box)
            if box is not None:
                found += 1
                assert 0 <= box.x1 < box.x2 <= w and 0 <= box.y1 < box.y2 <= h, (expr, box, w, h)
    if backend in ("fixed", "grounding-dino", "owlv2"):
        assert found > 0  # threshold 0: the random detectors always find something


async def test_simweb_grounder_finds_a_recorded_expression(grounders):
    from deepmmsearch.tools.crop import load_image

    g, world = grounders[0]["simweb"], grounders[1]
    scene = json.loads((world / "scenes.jsonl").read_text().splitlines()[0])
    obj = scene["objects"][0]
    box = await g.ground(load_image(world / scene["image"]), obj["expression"])
    assert box is not None and box.as_list() == obj["box"]


def _manual(path, kind, image, expr, **kw):
    """Run processor + model + post-processing by hand, as the transformers docs do."""
    import torch
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    proc = AutoProcessor.from_pretrained(path)
    model = AutoModelForZeroShotObjectDetection.from_pretrained(path).eval()
    if kind == "gdino":
        inputs = proc(images=image, text=expr, return_tensors="pt")
        with torch.no_grad():
            out = model(**inputs)
        return proc.post_process_grounded_object_detection(out, inputs["input_ids"], **kw)[0]
    inputs = proc(text=[[expr]], images=image, return_tensors="pt", padding="max_length",
                  max_length=16, truncation=True)
    with torch.no_grad():
        out = model(**inputs)
    return proc.post_process_grounded_object_detection(out, **kw)[0]


@pytest.mark.parametrize("shortest_edge", [None, 60])
def test_grounding_dino_best_box_in_original_pixels(tiny_gdino, shortest_edge):
    from deepmmsearch.tools.grounding.hf import GroundingDinoGrounder

    image = Image.linear_gradient("L").convert("RGB").resize((200, 120))
    g = GroundingDinoGrounder(model=str(tiny_gdino), threshold=0.0, text_threshold=0.0,
                              shortest_edge=shortest_edge, min_box_px=0)
    seen = image if shortest_edge is None else image.resize((100, 60), Image.BILINEAR)
    ref = _manual(tiny_gdino, "gdino", seen, "the white bird.", threshold=0.0, text_threshold=0.0,
                  target_sizes=[(120, 200)])
    expect = _expected_best(ref, 200, 120)
    got = g.best(image, "The white bird")  # lower-cased, period added
    assert expect is not None and got is not None
    assert got.as_list() == pytest.approx(expect, abs=1e-3)
    scored = g.detect(image, "the white bird")
    assert [s for s, _ in scored] == sorted((s for s, _ in scored), reverse=True)


def _expected_best(ref, w, h):
    """The highest-scoring reference box that survives clamping to the image."""
    from deepmmsearch.tools.crop import clamp_box

    rows = sorted(zip(ref["scores"].tolist(), ref["boxes"].tolist()), key=lambda r: -r[0])
    for _score, coords in rows:
        box = clamp_box(Box(*coords), w, h)
        if box is not None:
            return box.as_list()
    return None


def test_owlv2_best_box_undoes_the_square_padding(tiny_owlv2):
    from deepmmsearch.tools.grounding.hf import Owlv2Grounder

    image = Image.linear_gradient("L").convert("RGB").resize((200, 120))
    g = Owlv2Grounder(model=str(tiny_owlv2), threshold=0.0, shortest_edge=None, min_box_px=0)
    ref = _manual(tiny_owlv2, "owl", image, "the white bird", threshold=0.0, target_sizes=[(120, 200)])
    # the 200x120 image is padded to a 200x200 square: un-padded boxes reach below y=120
    assert float(ref["boxes"][:, 3].max()) > 150
    expect = _expected_best(ref, 200, 120)
    got = g.best(image, "the white bird")
    assert expect is not None and got is not None
    assert got.as_list() == pytest.approx(expect, abs=1e-3)
    assert all(b.y2 <= 120 for _, b in g.detect(image, "the white bird"))


@pytest.mark.parametrize("backend", ["grounding-dino", "owlv2"])
async def test_nothing_above_threshold_gives_none_and_the_toolbox_falls_back(
        tiny_gdino, tiny_owlv2, backend, tmp_path):
    from deepmmsearch.agent.state import ToolRequest
    from deepmmsearch.agent.toolbox import Toolbox
    from deepmmsearch.tools.image.fixture import FixtureImageSearch

    path = tiny_gdino if backend == "grounding-dino" else tiny_owlv2
    g = GROUNDER.build({"name": backend, "model": str(path), "threshold": 0.5})
    g.load()

    def hopeless(module, args, output):  # every score becomes ~0
        output.logits = output.logits - 1e4
        return output

    g._model.register_forward_hook(hopeless)
    image = Image.new("RGB", (120, 90), (10, 200, 30))
    assert await g.ground(image, "the white bird") is None
    image.save(tmp_path / "q.png")
    box = Toolbox(image_search=FixtureImageSearch(responses={"*": []}), grounder=g)
    req = ToolRequest("image_search", "the white bird", 0)
    call = await box.run(req, question="?", image=str(tmp_path / "q.png"))
    assert call.whole_image and "nothing matching" in call.note and call.error is None
    box.ground_fallback_whole = False
    call = await box.run(req, question="?", image=str(tmp_path / "q.png"))
    assert "nothing matching 'the white bird' was found" in call.error


def test_detector_options_are_validated_before_loading():
    with pytest.raises(ConfigError, match="threshold"):
        GROUNDER.build({"name": "grounding-dino", "threshold": 1.5})
    with pytest.raises(ConfigError, match="text_threshold"):
        GROUNDER.build({"name": "grounding-dino", "text_threshold": -1})
    with pytest.raises(ConfigError, match="unknown option"):
        GROUNDER.validate({"name": "owlv2", "box_threshold": 0.3})
    g = GROUNDER.build({"name": "grounding-dino"})  # nothing is loaded until the first call
    assert g._model is None and g.model_id == "IDEA-Research/grounding-dino-tiny"


def test_missing_local_model_is_a_clear_error(tmp_path):
    g = GROUNDER.build({"name": "owlv2", "model": str(tmp_path / "nope"), "local_files_only": True})
    with pytest.raises(Exception, match="nope"):
        g.best(Image.new("RGB", (32, 32)), "a bird")


async def test_self_grounder_frames():
    image = Image.new("RGB", (1000, 500))
    assert await SelfGrounder().ground(image, "[100, 50, 300, 250]") == Box(100, 50, 300, 250)
    half = SelfGrounder(input_size=[500, 250])
    assert await half.ground(image, "[100, 50, 300, 250]") == Box(200, 100, 600, 500)
    norm = SelfGrounder(coords="norm1000")
    assert await norm.ground(image, "[100, 100, 500, 900]") == Box(100, 50, 500, 450)
    qwen = SelfGrounder(coords="qwen2.5-vl", min_pixels=3136, max_pixels=200_000)
    w_in, h_in = qwen_resized_size(1000, 500, min_pixels=3136, max_pixels=200_000)
    assert (w_in % 28, h_in % 28) == (0, 0) and w_in * h_in <= 200_000
    box = await qwen.ground(image, f'```json\n[{{"bbox_2d": [0, 0, {w_in}, {h_in}], "label": "bird"}}]\n```')
    assert box == Box(0, 0, 1000, 500)
    assert await qwen.ground(image, "the white bird") is None
    with pytest.raises(ConfigError, match="coords"):
        SelfGrounder(coords="relative")


def test_qwen_resized_size_matches_known_values():
    # 1000x500 at the default budget: rounded to multiples of 28, area within max_pixels
    assert qwen_resized_size(1000, 500) == (1008, 504)
    assert qwen_resized_size(10, 10) == (56, 56)  # grown to min_pixels
    w, h = qwen_resized_size(4000, 3000)
    assert w * h <= 28 * 28 * 1280 and w % 28 == 0 and h % 28 == 0
    with pytest.raises(ValueError):
        qwen_resized_size(0, 10)
