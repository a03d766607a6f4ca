"""Run every benchmark (``bench/bench_*.py``) in turn; each prints its results and ratios.

Each benchmark module has ``main(argv) -> int`` and can also be run alone:
``.venv/bin/python bench/bench_engine.py``. Results are recorded by hand in docs/LOG.md.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    only = sys.argv[1:]
    failures = 0
    for path in sorted(here.glob("bench_*.py")):
        if only and not any(o in path.stem for o in only):
            continue
        print(f"\n=== {path.stem} ===", flush=True)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(mod)
        t0 = time.perf_counter()
        rc = mod.main([])
        print(f"--- {path.stem}: rc={rc} in {time.perf_counter() - t0:.1f}s", flush=True)
        failures += int(bool(rc))
    return int(failures > 0)


if __name__ == "__main__":
    sys.exit(main())
