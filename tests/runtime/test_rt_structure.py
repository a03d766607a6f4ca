"""The package's shape, checked from the source: where ``train/`` may be imported from, no import
cycles, no module over 500 lines, the tag strings only in the grammar and the prompts, and every
docstring example runs (doctests are collected here)."""

from __future__ import annotations

import ast
import doctest
import importlib
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "deepmmsearch"
MAX_LINES = 500
# the command-line stages launch a training run; they import train/ inside the function that runs it
LAUNCHERS = {"deepmmsearch.commands.sft", "deepmmsearch.commands.grpo", "deepmmsearch.quickstart"}
TAG_HOMES = {"deepmmsearch.protocol", "deepmmsearch.prompts"}
TAG = re.compile(r"</?(reason|answer|information|text_search|img_search)>")


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PKG.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(module: str, tree: ast.Module, *, top_level: bool) -> set[str]:
    """Our modules imported by ``module``: at import time only (``top_level``) or anywhere."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative
                    pkg = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
                    base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
            elif isinstance(node, ast.If) and _is_type_checking(node) or top_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            else:
                visit([c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt)])

    visit(tree.body)
    return {m for m in found if m in MODULES and m != module}


def test_train_is_imported_only_by_train_and_inside_the_launchers():
    bad = []
    for name, tree in TREES.items():
        if name.startswith("deepmmsearch.train"):
            continue
        anywhere = {m for m in _imports(name, tree, top_level=False) if m.startswith("deepmmsearch.train")}
        at_import = {m for m in _imports(name, tree, top_level=True) if m.startswith("deepmmsearch.train")}
        if at_import or (anywhere and name not in LAUNCHERS):
            bad.append((name, sorted(anywhere)))
    assert not bad, bad


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles found by a depth-first walk (none found ⇔ the graph has none)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    cycles: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, stack + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    return cycles


def test_no_import_cycles():
    """Over every import, the ones inside functions included (TYPE_CHECKING blocks aside)."""
    graph = {name: _imports(name, tree, top_level=False) for name, tree in TREES.items()}
    assert not find_cycles(graph)


def test_the_checks_see_what_they_check():
    """The import reader finds known edges and the cycle finder finds cycles (so the tests above
    can fail)."""
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
    sft = _imports("deepmmsearch.train.sft", TREES["deepmmsearch.train.sft"], top_level=True)
    assert {"deepmmsearch.train.launch", "deepmmsearch.train.sft_config"} <= sft
    lazy = _imports("deepmmsearch.quickstart", TREES["deepmmsearch.quickstart"], top_level=False)
    assert "deepmmsearch.train.sft" in lazy
    assert "deepmmsearch.train.sft" not in _imports("deepmmsearch.quickstart",
                                                    TREES["deepmmsearch.quickstart"], top_level=True)


def test_no_module_over_500_lines():
    long = {n: len(p.read_text(encoding="utf-8").splitlines()) for n, p in MODULES.items()}
    assert not {n: k for n, k in long.items() if k > MAX_LINES}


def _docstring_ids(tree: ast.Module) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def test_tag_strings_only_in_the_grammar_and_the_prompts():
    found = []
    for name, tree in TREES.items():
        if name in TAG_HOMES:
            continue
        docs = _docstring_ids(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docs and TAG.search(node.value)):
                found.append((name, node.lineno, node.value[:60]))
    assert not found, found


DOCTESTED = sorted(n for n, p in MODULES.items() if ">>> " in p.read_text(encoding="utf-8"))


def test_doctests_are_found():
    assert {"deepmmsearch.protocol", "deepmmsearch.appendlog"} <= set(DOCTESTED)


@pytest.mark.parametrize("module", DOCTESTED)
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
