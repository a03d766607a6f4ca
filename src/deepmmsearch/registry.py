"""Name → factory tables, one per pluggable role, resolved lazily.

Each entry is a literal ``"module:callable"`` string, imported only when the backend is built, so
``import deepmmsearch`` never pulls torch, transformers or an HTTP SDK. Every table holds a fake
that is a normal entry (``fixture``, ``scripted``, ``fixed``, ``rule``) for tests and demos.

A component is configured as a mapping with a ``name`` and the factory's keyword arguments::

    text_search: {name: bm25, index: runs/simweb/text_index}

``validate(spec)`` binds the keyword arguments to the factory's signature without calling it, so
configs fail before anything runs; unknown names and keys come with a did-you-mean.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration problem found before anything ran."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class ComponentSpec:
    """A backend choice: its registry name and the keyword arguments of its factory."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any, role: str) -> ComponentSpec:
        if isinstance(value, ComponentSpec):
            return value
        if isinstance(value, str):
            return cls(value, {})
        if isinstance(value, Mapping):
            if "name" not in value:
                raise ConfigError(f"{role}: a component needs a 'name' key, got {dict(value)}")
            opts = {k: v for k, v in value.items() if k != "name"}
            return cls(str(value["name"]), opts)
        raise ConfigError(f"{role}: expected a name or a mapping with 'name', got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dict(self.options)}


class Registry:
    def __init__(self, role: str, table: dict[str, str], *, doc: str = "") -> None:
        self.role = role
        self.table = dict(table)
        self.doc = doc

    def names(self) -> list[str]:
        return sorted(self.table)

    def register(self, name: str, target: str) -> None:
        """Add a backend (``"package.module:factory"``) — e.g. from a user's own plugin."""
        self.table[name] = target

    def resolve(self, name: str) -> Any:
        if name not in self.table:
            raise ConfigError(
                f"unknown {self.role} backend {name!r}{did_you_mean(name, self.table)}; "
                f"available: {', '.join(self.names())}"
            )
        target = self.table[name]
        module, _, attr = target.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            missing = exc.name or "?"
            if missing.split(".")[0] == module.split(".")[0]:  # one of our own modules
                raise ConfigError(
                    f"{self.role} backend {name!r} is registered as {target}, but module "
                    f"{missing} does not exist in this build"
                ) from None
            raise ConfigError(
                f"{self.role} backend {name!r} ({module}) needs the {missing!r} package, "
                f"which is not installed: pip install {missing}"
            ) from None
        try:
            return getattr(mod, attr)
        except AttributeError:
            raise ConfigError(
                f"{self.role} backend {name!r}: {module} has no {attr!r} (registered as {target})"
            ) from None

    def validate(self, spec: Any, **context: Any) -> ComponentSpec:
        spec = ComponentSpec.parse(spec, self.role)
        factory = self.resolve(spec.name)
        sig = inspect.signature(factory)
        params = sig.parameters
        accepts_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        if not accepts_kwargs:
            for key in spec.options:
                if key not in params:
                    raise ConfigError(
                        f"{self.role} {spec.name!r}: unknown option {key!r}"
                        f"{did_you_mean(key, params)}; options: {', '.join(params) or 'none'}"
                    )
        ctx = {k: v for k, v in context.items() if k in params or accepts_kwargs}
        try:
            sig.bind(**{**ctx, **dict(spec.options)})
        except TypeError as exc:
            raise ConfigError(f"{self.role} {spec.name!r}: {exc}") from None
        return spec

    def build(self, spec: Any, **context: Any) -> Any:
        """Build a backend. ``context`` (e.g. ``world=...``) is passed when the factory takes it."""
        spec = self.validate(spec, **context)
        factory = self.resolve(spec.name)
        params = inspect.signature(factory).parameters
        accepts_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        ctx = {k: v for k, v in context.items() if k in params or accepts_kwargs}
        return factory(**{**ctx, **dict(spec.options)})


def missing_dependency(package: str, extra: str, what: str) -> ImportError:
    """An ImportError that says what to install."""
    return ImportError(
        f"{what} needs the '{package}' package: pip install 'deepmmsearch[{extra}]' "
        f"(or pip install {package})"
    )


# --- the tables ------------------------------------------------------------------------------

POLICY = Registry(
    "policy",
    {
        "scripted": "deepmmsearch.policies.scripted:ScriptedPolicy",
        "hf": "deepmmsearch.policies.hf:HFPolicy",
        "openai": "deepmmsearch.policies.openai_compat:OpenAIPolicy",
        "simweb-expert": "deepmmsearch.simweb.expert:ExpertPolicy",
        "simweb-prior": "deepmmsearch.simweb.baseline:PriorPolicy",
    },
)

TEXT_SEARCH = Registry(
    "text_search",
    {
        "fixture": "deepmmsearch.tools.text.fixture:FixtureTextSearch",
        "bm25": "deepmmsearch.tools.text.bm25:BM25TextSearch",
        "searxng": "deepmmsearch.tools.text.web:SearxngTextSearch",
        "serpapi": "deepmmsearch.tools.text.web:SerpApiTextSearch",
        "serper": "deepmmsearch.tools.text.web:SerperTextSearch",
        "brave": "deepmmsearch.tools.text.web:BraveTextSearch",
        "http": "deepmmsearch.tools.text.web:RetrieverTextSearch",
    },
)

IMAGE_SEARCH = Registry(
    "image_search",
    {
        "fixture": "deepmmsearch.tools.image.fixture:FixtureImageSearch",
        "local": "deepmmsearch.tools.image.local:LocalImageSearch",
        "serpapi-lens": "deepmmsearch.tools.image.lens:SerpApiLensSearch",
    },
)

GROUNDER = Registry(
    "grounder",
    {
        "fixed": "deepmmsearch.tools.grounding.basic:FixedGrounder",
        "self": "deepmmsearch.tools.grounding.basic:SelfGrounder",
        "grounding-dino": "deepmmsearch.tools.grounding.hf:GroundingDinoGrounder",
        "owlv2": "deepmmsearch.tools.grounding.hf:Owlv2Grounder",
        "simweb": "deepmmsearch.simweb.grounder:SimWebGrounder",
    },
)

SUMMARIZER = Registry(
    "summarizer",
    {
        "extractive": "deepmmsearch.tools.summarize:ExtractiveSummarizer",
        "llm": "deepmmsearch.tools.summarize:LLMSummarizer",
        "none": "deepmmsearch.tools.summarize:PassthroughSummarizer",
    },
)

JUDGE = Registry(
    "judge",
    {
        "rule": "deepmmsearch.reward.judge:RuleJudge",
        "llm": "deepmmsearch.reward.judge:LLMJudge",
        "fixture": "deepmmsearch.reward.judge:FixtureJudge",
    },
)

IMAGE_HOST = Registry(
    "image_host",
    {
        "static": "deepmmsearch.tools.image.hosting:StaticDirHost",
        "s3": "deepmmsearch.tools.image.hosting:S3Host",
    },
)

DATASET = Registry(
    "dataset",
    {
        "infoseek": "deepmmsearch.data.benchmarks.infoseek:load_infoseek",
        "evqa": "deepmmsearch.data.benchmarks.evqa:load_evqa",
        "simplevqa": "deepmmsearch.data.benchmarks.simplevqa:load_simplevqa",
        "dynvqa": "deepmmsearch.data.benchmarks.dynvqa:load_dynvqa",
        "okvqa": "deepmmsearch.data.benchmarks.okvqa:load_okvqa",
        "aokvqa": "deepmmsearch.data.benchmarks.aokvqa:load_aokvqa",
        "fvqa": "deepmmsearch.data.benchmarks.fvqa:load_fvqa",
        "mmsearch": "deepmmsearch.data.benchmarks.search2026:load_mmsearch",
        "livevqa": "deepmmsearch.data.benchmarks.search2026:load_livevqa",
        "browsecomp_vl": "deepmmsearch.data.benchmarks.search2026:load_browsecomp_vl",
        "mmsearch_plus": "deepmmsearch.data.benchmarks.search2026:load_mmsearch_plus",
        "mmbench": "deepmmsearch.data.benchmarks.general:load_mmbench",
        "ai2d": "deepmmsearch.data.benchmarks.general:load_ai2d",
        "docvqa": "deepmmsearch.data.benchmarks.general:load_docvqa",
        "infovqa": "deepmmsearch.data.benchmarks.general:load_infovqa",
        "ocrbench": "deepmmsearch.data.benchmarks.general:load_ocrbench",
        "mathvista": "deepmmsearch.data.benchmarks.general:load_mathvista",
        "mmvet": "deepmmsearch.data.benchmarks.general:load_mmvet",
        "simweb": "deepmmsearch.data.benchmarks.simweb:load_simweb",
        "jsonl": "deepmmsearch.data.benchmarks.jsonl:load_jsonl",
    },
)

ALL: dict[str, Registry] = {
    r.role: r
    for r in (POLICY, TEXT_SEARCH, IMAGE_SEARCH, GROUNDER, SUMMARIZER, JUDGE, IMAGE_HOST, DATASET)
}
