#!/usr/bin/env bash
# Fetch (here, where pip reaches PyPI) the wheels the GPU machine lacks for bench/bench_gpu_recipe.py.
# That machine has Python 3.12, torch 2.11 (CUDA), transformers 5.17, accelerate, pyarrow, pandas,
# xxhash, but no TRL or datasets; we bring our own pinned stack (pyproject.toml `train`: the
# versions the CPU tests run) so the GPU run uses exactly the code paths tested here:
#
#   bash bench/gpu_wheels.sh            # -> .whl/ (git-ignored), about 17 MB
#
# then carry `.whl` to the machine and run bench/run_gpu_recipe.sh there (it installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${DEST:-.whl}
PY=${PY:-python3}
mkdir -p "$DEST"
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
# --no-deps: each needed package is named (what the machine lacks, or has in an older version);
# its huggingface_hub 1.33 and tokenizers 0.23.2 satisfy transformers 5.24 and datasets 5.2; regex
# is brought because transformers checks its version (>= 2025.10.22) at import
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d "$DEST" \
  trl==1.16.0 peft==0.21.2 transformers==5.24.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 \
  regex==2026.11.19
ls -l "$DEST"
