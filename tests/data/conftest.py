"""Fixtures for the data tests: paths of the benchmark fixture files."""

from __future__ import annotations

from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
DISTILL = Path(__file__).resolve().parents[1] / "fixtures" / "distill"


@pytest.fixture
def bench() -> Path:
    return BENCH


@pytest.fixture
def bench_specs(bench: Path, tmp_path: Path) -> dict[str, dict]:
    """A working loader spec for every benchmark fixture."""
    return {
        "infoseek": {"name": "infoseek", "path": str(bench / "infoseek/infoseek_val.jsonl"),
                     "qtype": str(bench / "infoseek/infoseek_val_qtype.jsonl"),
                     "image_root": str(bench / "infoseek/images"),
                     "image_map": str(bench / "infoseek/ovenid2impath.csv")},
        "evqa": {"name": "evqa", "path": str(bench / "evqa/test.csv"),
                 "image_root": str(bench / "evqa/landmarks"), "image_map": str(bench / "evqa/inat_val.json")},
        "simplevqa": {"name": "simplevqa", "path": str(bench / "simplevqa/test.parquet"),
                      "cache_dir": str(tmp_path / "img")},
        "dynvqa": {"name": "dynvqa", "path": str(bench / "dynvqa/dataset"),
                   "image_root": str(bench / "dynvqa/images"), "version": "202502"},
        "okvqa": {"name": "okvqa", "path": str(bench / "okvqa/OpenEnded_mscoco_val2014_questions.json"),
                  "image_root": str(bench / "okvqa/images")},
        "aokvqa": {"name": "aokvqa", "path": str(bench / "aokvqa/aokvqa_v1p0_val.json"),
                   "image_root": str(bench / "aokvqa")},
        "fvqa": {"name": "fvqa", "path": str(bench / "fvqa/fvqa_train.parquet"),
                 "cache_dir": str(tmp_path / "img")},
    }
