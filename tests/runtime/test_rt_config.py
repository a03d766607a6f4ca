"""Strict configs: unknown keys, wrong types, unknown backends (did-you-mean), overrides, and
every shipped config under configs/ validating.

Run: .venv/bin/pytest tests/runtime/test_rt_config.py -q
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from deepmmsearch.config import AskConfig, Limits, dump_config, load_config
from deepmmsearch.registry import POLICY, ComponentSpec, ConfigError, Registry

ROOT = Path(__file__).parents[2]
# Third-party formats ship beside our run configs: accelerate launcher files and veRL's Hydra /
# tool YAML (tested in tests/verl). Every other YAML under configs/ is a deepmmsearch run config.
FOREIGN = ("configs/accelerate/", "configs/verl/")
SHIPPED = sorted(
    rel for ext in ("yaml", "yml") for p in (ROOT / "configs").glob(f"**/*.{ext}")
    if not (rel := p.relative_to(ROOT).as_posix()).startswith(FOREIGN)
)


def _agent(**agent):
    return {"stage": "agent", "agent": agent}


@pytest.mark.parametrize("data,message", [
    ({"stage": "agent", "agnet": {}}, "unknown key 'agnet' (did you mean 'agent'?)"),
    (_agent(limitz={}), "unknown key 'agent.limitz' (did you mean 'limits'?)"),
    (_agent(limits={"max_tool_call": 3}), "unknown key 'agent.limits.max_tool_call' (did you mean 'max_tool_calls'?)"),
    (_agent(limits={"max_tool_calls": "ten"}), "agent.limits.max_tool_calls: expected int, got 'ten'"),
    (_agent(limits={"max_tool_calls": True}), "agent.limits.max_tool_calls: expected int, got True"),
    (_agent(limits={"max_text_searches": 1.5}), "agent.limits.max_text_searches: expected int, got 1.5"),
    (_agent(limits={"crop_search": "no way"}), "agent.limits.crop_search: expected bool, got 'no way'"),
    (_agent(top_k=[5]), "agent.top_k: expected int, got [5]"),
    (_agent(crop_margin="wide"), "agent.crop_margin: expected float, got 'wide'"),
    (_agent(limits=[1, 2]), "agent.limits: expected a mapping, got [1, 2]"),
    (_agent(limits={"max_turns": 0}), "limits.max_turns must be >= 1"),
    (_agent(limits={"max_tool_calls": -1}), "limits.max_tool_calls must be >= 0"),
    (_agent(text_search="bm52"), "unknown text_search backend 'bm52' (did you mean 'bm25'?)"),
    (_agent(policy={"name": "opneai"}), "unknown policy backend 'opneai' (did you mean 'openai'?)"),
    (_agent(image_search="fixtur"), "unknown image_search backend 'fixtur' (did you mean 'fixture'?)"),
    (_agent(grounder="fixd"), "unknown grounder backend 'fixd' (did you mean 'fixed'?)"),
    (_agent(summarizer="extractiv"), "unknown summarizer backend 'extractiv' (did you mean 'extractive'?)"),
    (_agent(text_search={"name": "fixture", "pth": "x"}), "text_search 'fixture': unknown option 'pth' (did you mean 'path'?)"),
    (_agent(policy={"name": "openai", "modle": "m"}), "policy 'openai': unknown option 'modle' (did you mean 'model'?)"),
    (_agent(policy={"path": "x"}), "agent.policy: a component needs a 'name' key"),
    (_agent(policy=3), "agent.policy: expected a name or a mapping with 'name', got 3"),
    (_agent(cache={"mode": "replya", "path": "c.db"}), "cache.mode must be off, live, record or replay, got 'replya' (did you mean 'replay'?)"),
    (_agent(cache={"mode": "replay"}), "cache.mode=replay needs cache.path"),
    ({"stage": "agnt"}, "unknown stage 'agnt' (did you mean 'agent'?)"),
])
def test_bad_configs(data, message):
    with pytest.raises(ConfigError) as err:
        load_config(data=data)
    assert message in str(err.value)


def test_defaults_are_the_paper_budgets():
    cfg = load_config(data={})
    assert isinstance(cfg, AskConfig) and cfg.stage == "agent"
    assert cfg.agent.limits == Limits()
    lim = cfg.agent.limits
    assert (lim.max_tool_calls, lim.max_image_searches, lim.max_response_tokens) == (10, 1, 8192)


def test_types_are_converted():
    cfg = load_config(data=_agent(crop_margin=0, limits={"max_text_searches": None}))
    assert cfg.agent.crop_margin == 0.0 and isinstance(cfg.agent.crop_margin, float)
    assert cfg.agent.limits.max_text_searches is None
    cfg = load_config(data=_agent(crop_margin="1e-1"))  # YAML 1.1 reads 1e-1 as a string
    assert cfg.agent.crop_margin == 0.1


def test_component_forms():
    cfg = load_config(data=_agent(text_search="fixture", policy={"name": "scripted", "turns": ["x"]}))
    assert cfg.agent.text_search == ComponentSpec("fixture", {})
    assert cfg.agent.policy == ComponentSpec("scripted", {"turns": ["x"]})


def test_overrides():
    data = _agent(policy="scripted", limits={"max_turns": 5})
    before = copy.deepcopy(data)
    cfg = load_config(data=data, overrides=[
        "agent.limits.max_tool_calls=4", "agent.limits.crop_search=false",
        "agent.policy.turns=['<reason>r</reason><answer>a</answer>']", "agent.prompts=compact",
        "agent.cache.mode=live", "agent.cache.path=/tmp/x.sqlite",
    ])
    assert data == before  # the caller's mapping is not mutated
    lim = cfg.agent.limits
    assert (lim.max_tool_calls, lim.crop_search, lim.max_turns) == (4, False, 5)
    assert cfg.agent.policy.options["turns"] == ["<reason>r</reason><answer>a</answer>"]
    assert cfg.agent.prompts == "compact" and cfg.agent.cache.mode == "live"


@pytest.mark.parametrize("override,message", [
    ("agent.limits.max_tool_calls", "must look like a.b=c"),
    ("agent.limits.max_tool_calls=lots", "expected int, got 'lots'"),
    ("agent.top_k.x=1", "'top_k' is not a section"),
    ("agent.limits.max_tool_callz=1", "did you mean 'max_tool_calls'"),
    ("agent.text_search=bm52", "did you mean 'bm25'"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(data=_agent(top_k=5), overrides=[override])
    assert message in str(err.value)


def test_yaml_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: agent\nagent: {policy: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(lst)
    ok = tmp_path / "ok.yaml"
    ok.write_text("stage: agent\n")
    with pytest.raises(ConfigError, match="this is a 'agent' config, expected 'eval'"):
        load_config(ok, expect="eval")


def test_dump_and_reload(tmp_path):
    cfg = load_config(ROOT / "configs" / "ask_fixture.yaml", ["agent.limits.max_turns=7"])
    out = tmp_path / "resolved.yaml"
    dump_config(cfg, out)
    assert load_config(out) == cfg


def test_registry_missing_module_is_a_config_error():
    reg = Registry("policy", {"ghost": "deepmmsearch.policies.ghost_does_not_exist:Ghost",
                              "noattr": "deepmmsearch.policies.scripted:NoSuchClass",
                              "thirdparty": "no_such_third_party_pkg_xyz:Thing"})
    with pytest.raises(ConfigError, match="module deepmmsearch.policies.ghost_does_not_exist does not exist"):
        reg.resolve("ghost")
    with pytest.raises(ConfigError, match="has no 'NoSuchClass'"):
        reg.resolve("noattr")
    with pytest.raises(ConfigError, match="does not exist in this build|not installed"):
        reg.resolve("thirdparty")


def test_registry_register_and_build():
    reg = Registry("policy", dict(POLICY.table))
    reg.register("mine", "deepmmsearch.policies.scripted:ScriptedPolicy")
    pol = reg.build({"name": "mine", "turns": ["t"]}, prompts=None, world=None)  # extra context dropped
    assert pol.name == "scripted" and pol.scripts == {"*": ["t"]}
    with pytest.raises(ConfigError, match="give 'path', 'turns' or 'scripts'"):
        reg.build("mine")


@pytest.mark.parametrize("path", SHIPPED)
def test_shipped_config_validates(path, monkeypatch, capsys):
    """Every YAML under configs/ must pass ``deepmmsearch validate`` (from the repository root).

    A config naming a backend whose module is not written yet fails here with that message.
    Shipped configs name inputs that earlier steps build (indexes, worlds, models), so the
    input-file check is off here (``--no-files``); it is tested in tests/runtime/test_rt_misuse.
    """
    from deepmmsearch.cli import main

    monkeypatch.chdir(ROOT)
    rc = main(["validate", path, "--no-files"])
    out, err = capsys.readouterr()
    if rc != 0:
        pytest.fail(f"deepmmsearch validate {path} -> {rc}: {err.strip()}")
    assert f"{path}: OK" in out


def test_some_configs_ship():
    assert "configs/ask_fixture.yaml" in SHIPPED


def test_floats_without_a_dot_are_floats_in_files_and_overrides(tmp_path):
    from deepmmsearch.config import parse_yaml

    assert parse_yaml("5e-5") == 5e-5 and parse_yaml("-1E3") == -1000.0 and parse_yaml("2.0e-3") == 2e-3
    assert parse_yaml("1.5") == 1.5 and parse_yaml("7") == 7 and parse_yaml("e5") == "e5"
    assert parse_yaml("v1e5") == "v1e5" and parse_yaml("'5e-5'") == "5e-5"  # quoted stays a string
    cfg = tmp_path / "grpo.yaml"
    cfg.write_text("stage: grpo\nmodel: m\ndataset: {name: jsonl, path: x}\n"
                   "trl: {learning_rate: 5e-5}\n", encoding="utf-8")
    loaded = load_config(cfg, ["trl.beta=1e-3"], expect="grpo")
    assert loaded.trl == {"learning_rate": 5e-5, "beta": 1e-3}
