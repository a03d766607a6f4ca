"""Benchmark loaders: one module per dataset, each turning the officially released files into
:class:`~deepmmsearch.types.Sample` records (see :mod:`deepmmsearch.data.benchmarks.base`).

Build one by registry name, as configs do::

    from deepmmsearch.registry import DATASET
    data = DATASET.build({"name": "okvqa", "path": "OpenEnded_mscoco_val2014_questions.json",
                          "annotations": "mscoco_val2014_annotations.json",
                          "image_root": "coco/val2014", "limit": 500, "seed": 0})
    print(data.report.summary())
    for sample in data: ...
"""

from deepmmsearch.data.benchmarks.base import BenchmarkData, LoadReport

__all__ = ["BenchmarkData", "LoadReport"]
