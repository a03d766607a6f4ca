"""The dataset-loader contract over every ``registry.DATASET`` name: samples with a question and
answers, a report, ``limit`` / ``seed`` / ``ids`` honoured, and a misspelt option is a config
error before anything is read."""

from __future__ import annotations

import pytest

from deepmmsearch.data.benchmarks.base import BenchmarkData
from deepmmsearch.registry import DATASET, ConfigError
from deepmmsearch.types import Sample

from .test_data_benchmarks_2026 import specs as specs_2026


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    from deepmmsearch.simweb.build import build_world

    root = tmp_path_factory.mktemp("contract_world")
    build_world(root, seed=0, size="small", entities=20, indexes=False, overwrite=True,
                progress=False, jobs=1)
    return root


@pytest.fixture
def specs(bench_specs, world_dir, tmp_path):
    rows = tmp_path / "rows.jsonl"
    DATASET.build(bench_specs["infoseek"]).write_jsonl(rows)
    newer = {name: {"name": name, **spec} for name, spec in specs_2026(tmp_path).items()}
    newer["infovqa"] = {**newer["docvqa"], "name": "infovqa"}  # InfographicVQA: DocVQA's layout
    return {**bench_specs, **newer,
            "simweb": {"name": "simweb", "path": str(world_dir), "split": "test"},
            "jsonl": {"name": "jsonl", "path": str(rows)}}


@pytest.mark.parametrize("name", DATASET.names())
def test_dataset_loader_contract(name, specs):
    spec = specs[name]
    data = DATASET.build(spec)
    assert isinstance(data, BenchmarkData) and len(data) > 0 and data.report.returned == len(data)
    for s in data:
        assert isinstance(s, Sample) and s.id and s.question and s.answers
    assert len(DATASET.build({**spec, "limit": 1})) == 1
    again = DATASET.build({**spec, "limit": 2, "seed": 3})
    assert again.ids() == DATASET.build({**spec, "limit": 2, "seed": 3}).ids()  # seeded, repeatable
    one = data.ids()[-1]
    assert DATASET.build({**spec, "ids": [one]}).ids() == [one]
    with pytest.raises(ConfigError, match="unknown option"):
        DATASET.validate({**spec, "limt": 1})
