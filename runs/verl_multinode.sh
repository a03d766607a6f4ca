#!/usr/bin/env bash
# DeepMMSearch-R1 GRPO on many nodes with veRL 0.9.1 (the paper: 4 nodes × 8 H100, §4.1, App. D).
#
#   runs/verl_multinode.sh [--variant paper-30ep|paper-20ep] [--loop deepmmsearch_agent|tool_agent]
#                          [--with NAME]... [--dry-run | --print-overrides] [hydra.key=value ...]
#
#   --variant          paper-30ep (default): batch 512, mini-batch 128, 30 epochs (§4.1)
#                      paper-20ep:           batch 256, mini-batch 64, 20 epochs (App. D)
#                      (configs/verl/<variant>.overrides; docs/DECISIONS.md, Training)
#   --loop             deepmmsearch_agent (default; our loop, the SFT template's inline layout)
#                      or tool_agent (veRL's loop; tool results as a new user turn)
#   --with NAME        also apply configs/verl/NAME.overrides, after the variant (repeatable), e.g.
#                      --with qwen3-vl-8b: Qwen3-VL-8B on 4 × 8 GPUs (MODEL = its SFT output)
#   --dry-run          print the resolved Hydra config (python -m verl.trainer.main_ppo --cfg job)
#   --print-overrides  print the override list, one a line, and exit
#   extra arguments    more Hydra overrides, applied last (e.g. trainer.total_epochs=1)
#
# Environment (defaults in brackets):
#   PYTHON [python]           the interpreter of the veRL environment (verl==0.9.1 + this package)
#   MODEL [runs/sft/model]    the LoRA-merged SFT model (`deepmmsearch sft` writes it)
#   TRAIN [runs/verl/fvqa_train.parquet], VAL [runs/verl/fvqa_test.parquet]
#                             written by: deepmmsearch data export fvqa path=fvqa_train.parquet \
#                                           --format verl --out runs/verl/fvqa_train.parquet
#   TOOLS [configs/verl/tools_paper.yaml]  the tool YAML; its agent config names the backends
#   NNODES [4], GPUS_PER_NODE [8], OUT [runs/verl/<variant>], EXPERIMENT [<variant>]
#
# The Ray cluster (4 nodes). On every node: the same checkout at the same path, the veRL
# environment with `pip install -e .` of this repo, and the model, data and any local index at the
# same paths (or on shared storage). Start Ray from the repo root so relative paths resolve:
#   head node:     cd /path/to/repo && ray start --head --port=6379 --num-gpus=8
#   other 3 nodes: cd /path/to/repo && ray start --address=<head-ip>:6379 --num-gpus=8
#   check:         ray status        # 32 GPUs
# Then run this script on the head node (veRL attaches to the running cluster; RAY_ADDRESS may be
# set to <head-ip>:6379). Stop with `ray stop` on every node.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VARIANT="paper-30ep"
LOOP="deepmmsearch_agent"
MODE="run"
WITH=()

usage() { sed -n '2,34p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --variant) VARIANT="${2:?--variant needs a value}"; shift 2 ;;
    --variant=*) VARIANT="${1#*=}"; shift ;;
    --loop) LOOP="${2:?--loop needs a value}"; shift 2 ;;
    --loop=*) LOOP="${1#*=}"; shift ;;
    --with) WITH+=("${2:?--with needs a name}"); shift 2 ;;
    --with=*) WITH+=("${1#*=}"); shift ;;
    --dry-run) MODE="dry-run"; shift ;;
    --print-overrides) MODE="print"; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) echo "verl_multinode.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done

VARIANT_FILE="$REPO/configs/verl/$VARIANT.overrides"
if [[ ! -f "$VARIANT_FILE" ]]; then
  echo "verl_multinode.sh: unknown variant '$VARIANT' (paper-30ep or paper-20ep)" >&2; exit 2
fi
for name in "${WITH[@]+"${WITH[@]}"}"; do
  if [[ ! -f "$REPO/configs/verl/$name.overrides" ]]; then
    echo "verl_multinode.sh: no configs/verl/$name.overrides (--with)" >&2; exit 2
  fi
done
case "$LOOP" in deepmmsearch_agent|tool_agent) ;; *)
  echo "verl_multinode.sh: unknown loop '$LOOP' (deepmmsearch_agent or tool_agent)" >&2; exit 2 ;;
esac

PYTHON="${PYTHON:-python}"
MODEL="${MODEL:-$REPO/runs/sft/model}"
TRAIN="${TRAIN:-$REPO/runs/verl/fvqa_train.parquet}"
VAL="${VAL:-$REPO/runs/verl/fvqa_test.parquet}"
TOOLS="${TOOLS:-$REPO/configs/verl/tools_paper.yaml}"
NNODES="${NNODES:-4}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
OUT="${OUT:-$REPO/runs/verl/$VARIANT}"
EXPERIMENT="${EXPERIMENT:-$VARIANT}"

# The chat template comes from the package (one source for SFT, TRL and veRL); Hydra takes it as
# a double-quoted string, so it must not contain a double quote or an interpolation.
TEMPLATE="$("$PYTHON" -m deepmmsearch.train.verl.template "$LOOP")"
if [[ "$TEMPLATE" == *'"'* || "$TEMPLATE" == *'${'* ]]; then
  echo "verl_multinode.sh: the chat template cannot be passed as a Hydra string" >&2; exit 1
fi

overrides=()
read_overrides() {  # one override a line; blank lines and # comments skipped
  local line
  while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line#"${line%%[![:space:]]*}"}"
    [[ -z "$line" || "$line" == \#* ]] && continue
    overrides+=("$line")
  done < "$1"
}
read_overrides "$REPO/configs/verl/grpo_paper.overrides"
read_overrides "$VARIANT_FILE"
for name in "${WITH[@]+"${WITH[@]}"}"; do read_overrides "$REPO/configs/verl/$name.overrides"; done
overrides+=(
  "actor_rollout_ref.model.path=$MODEL"
  "actor_rollout_ref.model.custom_chat_template=\"$TEMPLATE\""
  "actor_rollout_ref.rollout.multi_turn.tool_config_path=$TOOLS"
  "actor_rollout_ref.rollout.agent.agent_loop_config_path=$REPO/configs/verl/agent_loops.yaml"
  "actor_rollout_ref.rollout.agent.default_agent_loop=$LOOP"
  "data.train_files=$TRAIN"
  "data.val_files=$VAL"
  "trainer.nnodes=$NNODES"
  "trainer.n_gpus_per_node=$GPUS_PER_NODE"
  "trainer.experiment_name=$EXPERIMENT"
  "trainer.default_local_dir=$OUT/checkpoints"
  "trainer.rollout_data_dir=$OUT/rollouts"
)
overrides+=("$@")

case "$MODE" in
  print) printf '%s\n' "${overrides[@]}"; exit 0 ;;
  dry-run) exec "$PYTHON" -m verl.trainer.main_ppo --cfg job "${overrides[@]}" ;;
esac

for f in "$TRAIN" "$VAL" "$TOOLS"; do
  [[ -f "$f" ]] || { echo "verl_multinode.sh: missing $f" >&2; exit 1; }
done
[[ -d "$MODEL" ]] || { echo "verl_multinode.sh: missing model directory $MODEL" >&2; exit 1; }
mkdir -p "$OUT"
printf '%s\n' "${overrides[@]}" > "$OUT/overrides.txt"
cd "$REPO"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
"$PYTHON" -m verl.trainer.main_ppo "${overrides[@]}" 2>&1 | tee -a "$OUT/train.log"
