"""One reduced SimWeb world per test session (built once, with both indexes)."""

from __future__ import annotations

from pathlib import Path

import pytest

WORLD_ENTITIES = 500  # 50 test entities: enough held-out questions for the pass/fail checks


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory) -> Path:
    from deepmmsearch.simweb.build import build_world

    root = tmp_path_factory.mktemp("simweb") / "world"
    build_world(root, seed=7, entities=WORLD_ENTITIES, progress=False, jobs=1)
    return root


@pytest.fixture(scope="session")
def world(world_dir):
    from deepmmsearch.simweb.world import World

    return World.load(world_dir)
