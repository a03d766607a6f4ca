"""Vision warm-up: give a from-scratch tiny model's vision tower features worth reading.

The paper fine-tunes Qwen2.5-VL, whose vision encoder arrives pretrained; SFT then leaves it
frozen. A tiny model built from a config has a random encoder: frozen, its features vary from
image to image but carry nothing the language model can learn to read in minutes; trained during
SFT, they collapse to a constant (docs/LOG.md, Quickstart). This stage stands in for the missing
pretraining, the way an encoder is pretrained on labelled images before it meets a language model:
on SimWeb's training scenes, every image token of the merger's output is trained, through three
linear probes, to tell what object covers its cell — its colour, its kind (bird, car, ...) and
the region of the image the object sits in ("on the left", "at the top right": the words
referring expressions use) — or that none does. Then the probes are dropped, the merger's output
is rescaled to the norm of the word embeddings, and SFT runs with the encoder frozen, as in the
paper.

Only the world's training scenes and their annotations (boxes, colours, nouns) are used: no
question, no held-out image.

    vision_warmup: {world: runs/simweb, steps: 300, batch_size: 32, learning_rate: 3.0e-3}
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepmmsearch.registry import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class VisionWarmupSpec:
    """Settings of the warm-up (a section of the SFT config)."""

    world: str  # a built SimWeb world: its training scenes and their annotations
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 3e-3
    min_cover: float = 0.2  # a cell is labelled with an object covering at least this share of it
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("vision_warmup: steps and batch_size must be >= 1")
        if not 0.0 < self.min_cover <= 1.0:
            raise ConfigError("vision_warmup.min_cover must lie in (0, 1]")


@dataclass
class CellLabels:
    """Per image token: class indices (0 = no object) of colour, noun and region."""

    colour: list[int]
    noun: list[int]
    region: list[int]


def _cover(box: list[float], cell: tuple[float, float, float, float]) -> float:
    w = min(box[2], cell[2]) - max(box[0], cell[0])
    h = min(box[3], cell[3]) - max(box[1], cell[1])
    return max(0.0, w) * max(0.0, h)


def cell_labels(scene: Any, grid: tuple[int, int], min_cover: float,
                vocab: dict[str, list[str]]) -> CellLabels:
    """Labels of the ``grid`` (rows, columns) of image tokens over ``scene`` (row-major order)."""
    from deepmmsearch.simweb.scenes import region

    rows, cols = grid
    cw, ch = scene.width / cols, scene.height / rows
    out = CellLabels([], [], [])
    for r in range(rows):
        for c in range(cols):
            cell = (c * cw, r * ch, (c + 1) * cw, (r + 1) * ch)
            best, obj = min_cover * cw * ch, None
            for o in scene.objects:
                area = _cover(o.box, cell)
                if area >= best:
                    best, obj = area, o
            if obj is None:
                out.colour.append(0), out.noun.append(0), out.region.append(0)
                continue
            where = region(tuple(obj.box), (scene.width, scene.height)) if len(scene.objects) > 1 \
                else "whole"
            out.colour.append(1 + vocab["colour"].index(obj.colour))
            out.noun.append(1 + vocab["noun"].index(obj.noun))
            out.region.append(1 + vocab["region"].index(where))
    return out


def label_vocab() -> dict[str, list[str]]:
    from deepmmsearch.simweb.facts import COLOURS, NOUNS
    from deepmmsearch.simweb.scenes import _REGIONS

    return {"colour": list(COLOURS), "noun": [n for n, _ in NOUNS.values()],
            "region": [*_REGIONS.values(), "whole"]}


def warm_up_vision(model: Any, processor: Any, spec: VisionWarmupSpec) -> dict[str, Any]:
    """Train ``model``'s vision tower and merger on the world's training scenes (see the module
    docstring); returns a summary (steps, seconds, final probe accuracies)."""
    import torch

    from deepmmsearch.models.processor import ImageEncoder
    from deepmmsearch.simweb.world import World

    world = World.load(spec.world)
    scenes = [s for s in world.scenes.values() if s.split == "train"]
    if not scenes:
        raise ValueError(f"vision_warmup: {spec.world} has no training scenes")
    vocab = label_vocab()
    visual = model.model.visual
    merge = int(processor.image_processor.merge_size)
    encoder = ImageEncoder(processor.image_processor, cache_size=len(scenes) + 1, max_bytes=2 << 30)
    dim = model.config.get_text_config().hidden_size
    heads = torch.nn.ModuleDict({k: torch.nn.Linear(dim, len(v) + 1) for k, v in vocab.items()})
    params = [p for p in visual.parameters()] + list(heads.parameters())
    for p in visual.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=spec.learning_rate, weight_decay=0.0)
    rng = random.Random(f"vision-warmup:{spec.seed}")
    labels_cache: dict[str, CellLabels] = {}
    t0 = time.perf_counter()
    visual.train()
    acc: dict[str, float] = {}
    for step in range(spec.steps):
        batch = rng.sample(scenes, min(spec.batch_size, len(scenes)))
        enc = encoder.encode([str(world.path(s.image)) for s in batch])
        ys: dict[str, list[int]] = {k: [] for k in vocab}
        for s, thw in zip(batch, enc["image_grid_thw"].tolist()):
            if s.id not in labels_cache:
                grid = (thw[1] // merge, thw[2] // merge)
                labels_cache[s.id] = cell_labels(s, grid, spec.min_cover, vocab)
            lab = labels_cache[s.id]
            for k in vocab:
                ys[k] += getattr(lab, k)
        feats = visual(enc["pixel_values"], grid_thw=enc["image_grid_thw"]).pooler_output
        loss = 0.0
        for k, head in heads.items():
            target = torch.as_tensor(ys[k])
            logits = head(feats)
            loss = loss + torch.nn.functional.cross_entropy(logits, target)
            on = target > 0  # cells an object covers: what the probes are for
            acc[k] = float((logits.argmax(-1)[on] == target[on]).float().mean()) if on.any() else 0.0
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 50 == 0 or step == spec.steps - 1:
            log.info("vision warm-up step %d/%d: loss %.3f, accuracy on object cells %s", step + 1,
                     spec.steps, float(loss.detach()), {k: round(v, 3) for k, v in acc.items()})
    visual.eval()
    scale = _match_embedding_norm(model, visual, encoder, world, scenes[:64])
    return {"steps": spec.steps, "wall_s": round(time.perf_counter() - t0, 1),
            "cell_accuracy": {k: round(v, 3) for k, v in acc.items()}, "feature_scale": scale}


def _match_embedding_norm(model: Any, visual: Any, encoder: Any, world: Any, scenes: list) -> float:
    """Rescale the merger's last layer so image features have the word embeddings' mean norm."""
    import torch

    with torch.no_grad():
        enc = encoder.encode([str(world.path(s.image)) for s in scenes])
        feats = visual(enc["pixel_values"], grid_thw=enc["image_grid_thw"]).pooler_output
        words = model.get_input_embeddings().weight.norm(dim=-1).mean()
        scale = float(words / feats.norm(dim=-1).mean().clamp_min(1e-6))
        # the merger's last linear layer (Qwen2.5-VL: merger.mlp[2]; Qwen3-VL: merger.linear_fc2)
        last = [m for m in visual.merger.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.weight.mul_(scale)
        if last.bias is not None:
            last.bias.mul_(scale)
    return round(scale, 4)


def check_world(spec: VisionWarmupSpec | None) -> None:
    if spec is not None and not (Path(spec.world) / "world.json").exists():
        raise ConfigError(f"vision_warmup.world: {spec.world} is not a built SimWeb world")
