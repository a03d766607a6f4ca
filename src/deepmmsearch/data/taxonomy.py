"""Knowledge-taxonomy labels for distilled questions.

The paper has its teacher label every question with a knowledge category (the list appears only
in its Figure 2); ours is :data:`DEFAULT_CATEGORIES`, configurable. Labellers:

- ``rule``: the sample's own category (``Sample.category`` or ``metadata["category"]`` — SimWeb
  sets it from its entity kinds), renamed through ``mapping``; without one, keyword rules on the
  question; else ``other``;
- ``llm``: a model (any Policy spec, e.g. the teacher's) picks one category from the list
  (prompt :data:`LABEL_PROMPT`); replies are cached in SQLite when ``cache`` is set; a reply naming
  no listed category gives ``other`` and is counted as ``unparsed``;
- ``auto`` (default): ``rule`` when the sample carries a category, else ``llm`` when a policy is
  configured, else the keyword rules.

    labeller = build_labeller(TaxonomyConfig(method="llm", policy=ComponentSpec("openai", {...})))
    category, how = await labeller.label(sample)   # how: dataset | keywords | llm | unparsed | ...
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from deepmmsearch.protocol import IMAGE_PLACEHOLDER
from deepmmsearch.registry import ComponentSpec, ConfigError
from deepmmsearch.types import Message, Sample

log = logging.getLogger(__name__)

DEFAULT_CATEGORIES = (
    "animals", "plants and fungi", "landmarks and places", "buildings and architecture",
    "vehicles and transport", "people", "art and culture", "food and drink",
    "products and brands", "sports", "nature and geography", "science and technology",
    "events and history", "other",
)

_KEYWORDS: dict[str, tuple[str, ...]] = {
    "animals": ("animal", "bird", "dog", "cat", "fish", "insect", "species", "mammal", "breed",
                "reptile", "wingspan", "butterfly", "horse"),
    "plants and fungi": ("plant", "flower", "tree", "leaf", "fungus", "mushroom", "genus",
                         "bloom", "seed"),
    "landmarks and places": ("landmark", "city", "country", "place", "located", "where is",
                             "park", "town", "island", "monument"),
    "buildings and architecture": ("building", "tower", "bridge", "church", "architect",
                                   "castle", "temple", "stadium", "museum", "cathedral"),
    "vehicles and transport": ("car", "aircraft", "airplane", "plane", "train", "ship", "boat",
                               "vehicle", "locomotive", "engine", "airline"),
    "people": ("who is", "person", "man", "woman", "actor", "singer", "player", "born",
               "politician", "wife", "husband"),
    "art and culture": ("painting", "painted", "artist", "sculpture", "film", "movie", "album",
                        "song", "book", "novel", "music"),
    "food and drink": ("food", "dish", "drink", "fruit", "cuisine", "wine", "beer", "recipe"),
    "products and brands": ("brand", "logo", "company", "product", "manufacturer", "founded"),
    "sports": ("team", "sport", "league", "match", "stadium", "olympic", "championship"),
    "nature and geography": ("mountain", "river", "lake", "volcano", "sea", "elevation", "desert"),
    "science and technology": ("chemical", "element", "technology", "computer", "software",
                               "planet", "star"),
    "events and history": ("war", "battle", "event", "history", "festival", "century", "dynasty"),
}

LABEL_PROMPT = """Classify the knowledge a visual question asks about into exactly one category.
Categories: {categories}
Question: {question}
Reply with the category name only."""


@dataclass(frozen=True, kw_only=True)
class TaxonomyConfig:
    """How distilled questions get their knowledge category (see the module docstring)."""

    method: str = "auto"  # auto | rule | llm
    categories: list[str] = field(default_factory=lambda: list(DEFAULT_CATEGORIES))
    mapping: dict[str, str] = field(default_factory=dict)  # dataset category -> category
    policy: ComponentSpec | None = None  # the LLM labeller (method llm / auto)
    cache: str | None = None  # SQLite file caching LLM labels
    with_image: bool = False  # also show the model the image (multimodal labeller)
    other: str = "other"

    def __post_init__(self) -> None:
        if self.method not in ("auto", "rule", "llm"):
            raise ConfigError(f"taxonomy.method must be auto, rule or llm, got {self.method!r}")
        if self.method == "llm" and self.policy is None:
            raise ConfigError("taxonomy.method=llm needs taxonomy.policy (e.g. {name: openai, ...})")
        if not self.categories:
            raise ConfigError("taxonomy.categories must not be empty")


def keyword_category(text: str, categories: tuple[str, ...] | list[str], other: str) -> str:
    """The category whose keywords occur most in ``text`` (whole words), else ``other``."""
    words = " " + re.sub(r"[^a-z0-9 ]", " ", text.lower()) + " "
    scores = Counter({c: sum(f" {k} " in words for k in kws)
                      for c, kws in _KEYWORDS.items() if c in categories})
    best = scores.most_common(1)
    return best[0][0] if best and best[0][1] > 0 else other


class Labeller:
    """Labels samples; ``counts`` tallies how each label was obtained."""

    def __init__(self, cfg: TaxonomyConfig, policy: Any = None) -> None:
        self.cfg = cfg
        self.policy = policy
        self.counts: Counter[str] = Counter()
        self.cache = None
        if cfg.cache and policy is not None:
            from deepmmsearch.tools.cache import ToolCache

            self.cache = ToolCache(cfg.cache, "live")

    def dataset_category(self, sample: Sample) -> str | None:
        raw = sample.category or sample.metadata.get("category")
        return None if raw in (None, "") else str(raw)

    async def label(self, sample: Sample) -> tuple[str, str]:
        """``(category, how)``."""
        own = self.dataset_category(sample)
        if self.cfg.method in ("rule", "auto") and own is not None:
            cat, how = self.cfg.mapping.get(own, own), "dataset"
        elif self.cfg.method == "llm" or (self.cfg.method == "auto" and self.policy is not None):
            cat, how = await self._ask(sample)
        else:
            cat = keyword_category(sample.question, self.cfg.categories, self.cfg.other)
            how = "keywords" if cat != self.cfg.other else "default"
        self.counts[how] += 1
        return cat, how

    def parse(self, reply: str) -> str | None:
        text = reply.strip().lower()
        for cat in sorted(self.cfg.categories, key=len, reverse=True):
            if cat.lower() in text:
                return cat
        return None

    async def _ask(self, sample: Sample) -> tuple[str, str]:
        from deepmmsearch.policies.base import GenerationRequest
        from deepmmsearch.tools.cache import make_key

        with_image = self.cfg.with_image and sample.image is not None
        key = make_key("taxonomy", list(self.cfg.categories), sample.question, with_image and sample.image,
                       getattr(self.policy, "name", ""), getattr(self.policy, "model", ""))
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return hit["category"], "llm"
        prompt = LABEL_PROMPT.format(categories="; ".join(self.cfg.categories),
                                     question=sample.question)
        message = (Message("user", f"{IMAGE_PLACEHOLDER}{prompt}", images=(sample.image,))
                   if with_image else Message("user", prompt))
        try:
            gen = await self.policy.generate(GenerationRequest(
                messages=[message], max_new_tokens=32, stop=(), image=sample.image if with_image else None,
                episode_id="taxonomy", question=sample.question,
                metadata={"role": "taxonomy", "id": sample.id}))
        except Exception as exc:  # noqa: BLE001 - a failed label is "other", counted
            log.warning("taxonomy label failed for %s: %s", sample.id, exc)
            return self.cfg.other, "failed"
        cat = self.parse(gen.text)
        if cat is None:
            return self.cfg.other, "unparsed"
        if self.cache is not None:
            self.cache.put(key, {"category": cat}, role="taxonomy", input=sample.question[:300])
        return cat, "llm"


def build_labeller(cfg: TaxonomyConfig, *, prompts: Any = None, policy: Any = None) -> Labeller:
    """A labeller; ``policy`` (an object) overrides ``cfg.policy`` (a spec)."""
    if policy is None and cfg.policy is not None:
        from deepmmsearch.registry import POLICY

        policy = POLICY.build(cfg.policy, prompts=prompts) if prompts is not None else POLICY.build(cfg.policy)
    return Labeller(cfg, policy)
