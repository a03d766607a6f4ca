"""YAML → frozen dataclasses, strictly.

Every run is one YAML file whose top-level ``stage`` key names its schema (``agent``, ``eval``,
``distill``, ``sft``, ``grpo``, ``quickstart``). Loading checks types, rejects unknown keys with
a did-you-mean, resolves every backend name against its registry and binds its options to the
factory's signature — all before anything runs. Command-line overrides are ``a.b=c`` (the value
is parsed as YAML, so ``limits.max_tool_calls=4`` is an int).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deepmmsearch.registry import ALL as REGISTRIES
from deepmmsearch.registry import ComponentSpec, ConfigError, did_you_mean


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Episode budgets (paper: ≤ 10 tool calls, 1 image search, 8192 response tokens)."""

    max_tool_calls: int = 10
    max_image_searches: int = 1
    max_text_searches: int | None = None  # None: only max_tool_calls bounds them
    max_turns: int = 10
    max_response_tokens: int = 8192
    max_new_tokens_per_turn: int = 1024
    max_invalid_actions: int = 2  # corrective observations before the episode is stopped
    crop_search: bool = True  # ablation: False searches the whole image for every image search
    allow_image_search: bool = True
    allow_text_search: bool = True

    def __post_init__(self) -> None:
        for f in ("max_tool_calls", "max_image_searches", "max_turns", "max_response_tokens"):
            if getattr(self, f) < 0:
                raise ConfigError(f"limits.{f} must be >= 0")
        if self.max_turns < 1:
            raise ConfigError("limits.max_turns must be >= 1")


@dataclass(frozen=True, kw_only=True)
class CacheConfig:
    mode: str = "off"  # off | live | record | replay
    path: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("off", "live", "record", "replay"):
            raise ConfigError(
                f"cache.mode must be off, live, record or replay, got {self.mode!r}"
                f"{did_you_mean(self.mode, ['off', 'live', 'record', 'replay'])}"
            )
        if self.mode != "off" and not self.path:
            raise ConfigError(f"cache.mode={self.mode} needs cache.path")


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """The agent: a policy, its tools and its budgets. Shared by ask, eval, distill and GRPO."""

    policy: ComponentSpec = field(default_factory=lambda: ComponentSpec("scripted"))
    text_search: ComponentSpec = field(default_factory=lambda: ComponentSpec("fixture"))
    image_search: ComponentSpec = field(default_factory=lambda: ComponentSpec("fixture"))
    grounder: ComponentSpec = field(default_factory=lambda: ComponentSpec("fixed"))
    summarizer: ComponentSpec = field(default_factory=lambda: ComponentSpec("extractive"))
    cache: CacheConfig = field(default_factory=CacheConfig)
    limits: Limits = field(default_factory=Limits)
    prompts: str = "paper"
    top_k: int = 5
    crop_margin: float = 0.1  # padding around a grounded box, as a fraction of its size
    crop_min_size: int = 32  # pixels; smaller crops are grown around their centre
    ground_fallback_whole: bool = True  # grounding found nothing: search the whole image
    artifacts_dir: str | None = None  # where crops and boxed images are saved
    concurrency: int = 8


@dataclass(frozen=True, kw_only=True)
class AskConfig:
    stage: str = "agent"
    agent: AgentConfig = field(default_factory=AgentConfig)
    seed: int = 0


# stage name -> "module:Class"; each stage module owns its schema.
STAGES: dict[str, str] = {
    "agent": "deepmmsearch.config:AskConfig",
    "eval": "deepmmsearch.eval.harness:EvalConfig",
    "distill": "deepmmsearch.data.distill:DistillConfig",
    "sft": "deepmmsearch.train.sft_config:SFTRunConfig",
    "grpo": "deepmmsearch.train.grpo_config:GRPORunConfig",
    "quickstart": "deepmmsearch.quickstart:QuickstartConfig",
    "serve": "deepmmsearch.serve.settings:ServeConfig",
}

# field name -> registry role, for ComponentSpec fields whose name is not the role
_ROLE_ALIASES = {"teacher": "policy", "judges": "judge", "judge": "judge", "reward_judge": "judge"}


# --------------------------------------------------------------------------------------------
# generic strict loading


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if tp is ComponentSpec:
        role = _ROLE_ALIASES.get(where.rsplit(".", 1)[-1].split("[")[0], where.rsplit(".", 1)[-1])
        spec = ComponentSpec.parse(value, where)
        if role in REGISTRIES:
            REGISTRIES[role].validate(spec)
        return spec
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return build_dataclass(tp, value, where)
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 1e-4 as a string
        except ValueError:
            pass
    if isinstance(tp, type):
        if tp is int and isinstance(value, bool):
            raise ConfigError(f"{where}: expected int, got {value!r}")
        if not isinstance(value, tp):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    return value


def build_dataclass(cls: type, data: Mapping[str, Any], where: str = "") -> Any:
    """Build ``cls`` from ``data``; unknown keys and wrong types raise ConfigError."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise ConfigError(
                f"unknown key {path!r}{did_you_mean(str(key), fields)}; "
                f"known keys here: {', '.join(fields)}"
            )
        kwargs[key] = _convert(value, hints[key], path)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    cur = data
    for k in keys[:-1]:
        nxt = cur.get(k)
        if nxt is None:
            nxt = cur[k] = {}
        elif isinstance(nxt, str):  # a component given by name only: `policy: scripted`
            nxt = cur[k] = {"name": nxt}
        elif not isinstance(nxt, dict):
            raise ConfigError(f"override {dotted!r}: {k!r} is not a section")
        cur = nxt
    cur[keys[-1]] = value


class ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader, plus floats written without a dot (``5e-5``, ``1E-3``): YAML 1.1 reads
    them as strings, and a learning rate of ``"5e-5"`` would only fail deep inside an optimiser."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def parse_yaml(text: str) -> Any:
    """Parse config text (a file or an override's value) with :class:`ConfigLoader`."""
    return yaml.load(text, Loader=ConfigLoader)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like a.b=c")
        key, raw = item.split("=", 1)
        _set_dotted(data, key.strip(), parse_yaml(raw) if raw else "")
    return data


def stage_class(stage: str) -> type:
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}{did_you_mean(stage, STAGES)}; one of {sorted(STAGES)}")
    module, _, name = STAGES[stage].partition(":")
    return getattr(importlib.import_module(module), name)


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    if not p.is_file():
        raise ConfigError(f"{p} is not a file: give the path of a YAML config")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{p} is not a text file (not UTF-8): give a YAML config") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror or exc}") from None
    if not text.strip() or all(ln.lstrip().startswith("#") for ln in text.splitlines()
                               if ln.strip()):
        raise ConfigError(f"{p} is empty: a config needs at least a 'stage:' line")
    try:
        data = parse_yaml(text) or {}
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping")
    return data


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    expect: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> Any:
    """Load and validate a run config. ``expect`` checks the stage (e.g. ``"eval"``)."""
    # a deep copy: overrides must not write into the caller's nested mappings
    if data is not None:
        raw: dict[str, Any] = copy.deepcopy(dict(data))
    else:
        raw = load_yaml(path) if path else {}
    raw = apply_overrides(raw, overrides)
    stage = raw.get("stage", expect or "agent")
    if expect is not None and stage != expect:
        raise ConfigError(f"{path}: this is a {stage!r} config, expected {expect!r}")
    raw["stage"] = stage
    return build_dataclass(stage_class(stage), raw)


def to_plain(obj: Any) -> Any:
    """A config as plain data (for saving the resolved config of a run)."""
    if isinstance(obj, ComponentSpec):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(x) for x in obj]
    if isinstance(obj, Mapping):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def dump_config(obj: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_plain(obj), sort_keys=False), encoding="utf-8")
