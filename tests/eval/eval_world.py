"""A tiny evaluation world for the eval tests: five questions about the fixture scene, canned
search results (fixture backends), scripted policies per workflow, and a config writer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

SAMPLES = [
    {"id": "q1", "question": "What is the wingspan of this bird?", "answers": ["131 to 170 cm"],
     "image": "scene.png", "category": "animal", "search_required": True},
    {"id": "q2", "question": "What colour is the bird?", "answers": ["white"],
     "image": "scene.png", "category": "animal", "search_required": False},
    {"id": "q3", "question": "Which lake is shown?", "answers": ["Lake Geneva"],
     "image": "scene.png", "category": "place", "search_required": True},
    {"id": "q4", "question": "How long does this bird live?", "answers": ["15 years", "fifteen years"],
     "image": "scene.png", "category": "animal", "search_required": True},
    {"id": "q5", "question": "Is this a heron?", "answers": ["yes"],
     "image": "scene.png", "category": "animal", "search_required": False},
]

R = "<reason>{}</reason>"
AGENT_SCRIPTS = {
    "q1": [R.format("Identify the bird first.") + "<img_search>the white bird</img_search>",
           R.format("It is a great egret.") + "<text_search>great egret wingspan</text_search>",
           R.format("Found it.") + "<answer>131 to 170 cm</answer>"],
    "q2": [R.format("Visible in the image.") + "<answer>white</answer>"],
    "q3": [R.format("Search the whole scene.") + "<img_search><img></img_search>",
           R.format("Not sure.") + "<answer>Lake Como</answer>"],
    "q4": [R.format("Need facts.") + "<text_search>great egret lifespan</text_search>",
           R.format("Try again.") + "<text_search>great egret life expectancy</text_search>",
           R.format("Found it.") + "<answer>15 years</answer>"],
    "q5": [R.format("Hmm.") + "<answer>Unable to answer due to lack of relevant information</answer>"],
}
DIRECT_SCRIPTS = {"*": [R.format("Looks white.") + "<answer>white</answer>"]}
RAG_SCRIPTS = {"*": ["<text_search>great egret wingspan</text_search>",
                     R.format("From the results.") + "<answer>131 to 170 cm</answer>"]}

TEXT_HITS = {
    "great egret wingspan": [{"title": "Great egret", "url": "https://example.org/great-egret",
                              "snippet": "The great egret is a large heron. Its wingspan is 131 to 170 cm."}],
    "great egret lifespan": [{"title": "Egret", "url": "https://example.org/egret",
                              "snippet": "Egrets are herons."}],
    "great egret life expectancy": [{"title": "Egret life", "url": "https://example.org/egret-life",
                                     "snippet": "A great egret lives about 15 years."}],
    "*": [{"title": "Nothing", "url": "https://example.org/none", "snippet": "No facts here."}],
}
IMAGE_HITS = {"*": [{"title": "Great egret in flight", "url": "https://example.org/img/egret",
                     "snippet": "A great egret flying over a lake."}]}


def write_world(root: Path) -> dict[str, Path]:
    """Write the samples, hits and scripts under ``root``; returns their paths."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "scene.png", root / "scene.png")
    paths = {"samples": root / "samples.jsonl", "text": root / "text_hits.yaml",
             "image": root / "image_hits.yaml", "agent": root / "agent.yaml",
             "direct": root / "direct.yaml", "rag": root / "rag.yaml"}
    paths["samples"].write_text("".join(json.dumps(s) + "\n" for s in SAMPLES), encoding="utf-8")
    for key, data in (("text", TEXT_HITS), ("image", IMAGE_HITS), ("agent", AGENT_SCRIPTS),
                      ("direct", DIRECT_SCRIPTS), ("rag", RAG_SCRIPTS)):
        paths[key].write_text(yaml.safe_dump(data), encoding="utf-8")
    return paths


def eval_config(root: Path, out: Path, *, judges: list[Any] | None = None, cache: str = "live",
                text_latency: float = 0.0, concurrency: int = 4, **extra: Any) -> dict[str, Any]:
    """A plain eval config (a dict, as YAML would give) over the tiny world."""
    p = write_world(root) if not (root / "samples.jsonl").exists() else {
        "samples": root / "samples.jsonl", "text": root / "text_hits.yaml",
        "image": root / "image_hits.yaml", "agent": root / "agent.yaml",
        "direct": root / "direct.yaml", "rag": root / "rag.yaml"}
    cfg = {
        "stage": "eval", "name": "tiny", "out": str(out), "progress": False,
        "agent": {
            "policy": {"name": "scripted", "path": str(p["agent"])},
            "text_search": {"name": "fixture", "path": str(p["text"]), "latency_s": text_latency},
            "image_search": {"name": "fixture", "path": str(p["image"])},
            "grounder": {"name": "fixed", "box": [20, 20, 90, 80]},
            "summarizer": "extractive",
            "cache": {"mode": cache, "path": str(root / "tools.sqlite")} if cache != "off" else {"mode": "off"},
            "concurrency": concurrency,
        },
        "datasets": [{"loader": {"name": "jsonl", "path": str(p["samples"]), "source": "tiny"},
                      "label": "Tiny"}],
        "workflows": [
            {"kind": "direct", "policy": {"name": "scripted", "path": str(p["direct"])}},
            {"kind": "rag", "policy": {"name": "scripted", "path": str(p["rag"])}},
            {"kind": "agent"},
            {"kind": "agent", "label": "no-crop", "limits": {"crop_search": False}, "baseline": "agent"},
            {"kind": "agent", "label": "one-text", "limits": {"max_text_searches": 1}, "baseline": "agent"},
        ],
        "judges": judges or ["rule"],
    }
    cfg.update(extra)
    return cfg


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path
