#!/usr/bin/env bash
# The GPU run of bench/bench_gpu_recipe.py as one command, under an 8-minute limit (issue 20),
# counted from the start of this script (LIMIT seconds):
# installs the wheels fetched by bench/gpu_wheels.sh (if .whl/ is there) into /tmp/site, prints
# the stack it runs on, then measures one model at the paper's shapes. Results: $OUT_DIR/<model>.json
# (written after every part, so a later failure keeps the earlier numbers) and the printed table.
#
#   bash bench/run_gpu_recipe.sh                        # Qwen2.5-VL-7B, all three parts
#   MODEL=qwen3-vl-8b bash bench/run_gpu_recipe.sh
#   MODEL="qwen2.5-vl-7b qwen3-vl-8b" bash bench/run_gpu_recipe.sh   # both, one 8-minute limit
#   LIMIT=300 bash bench/run_gpu_recipe.sh --parts sft  # extra arguments go to the bench
#   make bench-gpu                                      # the same
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-qwen2.5-vl-7b}
LIMIT=${LIMIT:-480}
OUT_DIR=${OUT_DIR:-${OUT:-runs/bench_gpu}}
PY=${PY:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
  TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRL_EXPERIMENTAL_SILENCE=1
"$PY" - <<'PYEOF'
import importlib, sys
missing = []
for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "PIL", "yaml", "httpx"):
    try:
        mod = importlib.import_module(name)
        print(f"{name} {getattr(mod, '__version__', '?')}", end="; ")
    except Exception as exc:  # noqa: BLE001 - report every missing piece at once
        missing.append(f"{name} ({exc})")
import torch
print("\ncuda:", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")
if missing:
    sys.exit("missing: " + ", ".join(missing) + " -- fetch them with bench/gpu_wheels.sh and carry .whl")
PYEOF
mkdir -p "$OUT_DIR"
# several models (MODEL="qwen2.5-vl-7b qwen3-vl-8b") share the one limit, in that order
status=0
for model in $MODEL; do
  left=$((LIMIT - SECONDS))
  if [ "$left" -lt 60 ]; then echo "no time left for $model (limit ${LIMIT}s)"; status=124; break; fi
  device=(--device cuda)  # never a silent CPU fallback on the GPU machine
  case " $* " in *" --tiny "*|*" --device "*) device=() ;; esac
  timeout --signal=TERM --kill-after=15 "$left" "$PY" bench/bench_gpu_recipe.py --model "$model" \
    "${device[@]}" --out "$OUT_DIR/$model.json" "$@" || status=$?
done
exit "$status"
