#!/usr/bin/env bash
# The paper's two effects in miniature, on a CPU, with mmpr's own commands:
#   (Table 3) MPO lifts the CoT accuracy of an SFT model whose CoT is worse than its direct answers;
#   (Table 6) DPO alone, at a high learning rate, loses accuracy and leaves unparsable answers; MPO does not.
#
#   bash experiments/tiny_grid/reproduce.sh OUT          # full run: 22 min measured on 2 idle cores
#   bash experiments/tiny_grid/reproduce.sh OUT --quick  # the same steps at toy sizes (a few minutes; CI runs it)
#   TASK_SEED=1 bash experiments/tiny_grid/reproduce.sh OUT  # another draw of the questions and the model's weights
#
# Steps: a synthetic grid-counting task and a tiny Qwen2-VL that knows its words (experiments.tiny_grid.generate) ->
# SFT on CoT answers, then a shift to mostly direct answers with the image side frozen (mpo_train, SFT term
# alone) = the start ->
# preference pairs sampled from the start (mmpr.build, N samples at T = 1) -> three arms from the start on the
# same pairs and budget: continued SFT on the chosen answers, DPO only, MPO; plus DPO only and MPO at a higher
# lr; several seeds each (mpo_train) -> greedy CoT and direct evaluation on held-out questions (evals.run) ->
# OUT/results.json, OUT/results.md and OUT/results.png (experiments.tiny_grid.report). What was tried: LOG.md.
# Where it departs from the paper: a 0.8 M-parameter model trained from scratch on one synthetic task, one round
# of self-sampled pairs, and SFT (not MPO's start, InternVL2-8B) made CoT-worse-than-direct by construction.
# Every step resumes: rerun the same command after a kill and finished steps are skipped.
set -euo pipefail

OUT=${1:?usage: reproduce.sh OUT [--quick]}
QUICK=${2:-}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS=${THREADS:-2}   # a fixed, small number of torch threads: timings comparable between runs
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../scripts/find_python.sh"  # PYTHON: the .venv; ROOT
PY=$PYTHON
# the experiment's modules are imported from the checkout (an installed mmpr ships them too)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
TASK_SEED=${TASK_SEED:-0}

# Full size: 1,000 build questions (with 400 the arms fit their questions and MPO stayed below direct: LOG.md)
if [[ "$QUICK" == "--quick" ]]; then
  TRAIN=24 TEST=24 SFT=200 HIDDEN=64 LAYERS=1 BATCH=8
  COT_STEPS=200 START_LR=3e-3 SHIFT_STEPS=5 N=6 ARM_STEPS=4 SEEDS="0"
else
  TRAIN=1000 TEST=300 SFT=4000 HIDDEN=128 LAYERS=2 BATCH=16
  COT_STEPS=2000 START_LR=1e-3 SHIFT_STEPS=800 N=8 ARM_STEPS=300 SEEDS="0 1 2"
fi
LR=1e-4 HIGH_LR=3e-4
mkdir -p "$OUT"
START=$(date +%s)
say() { echo "[$(( $(date +%s) - START ))s] $*"; }
train_step() {  # train_step WHAT DIR SETTINGS...: mpo_train into DIR (its log in DIR.log) unless already done
  local what=$1 dir=$2
  shift 2
  [[ -f "$dir/final/config.json" ]] && return 0
  say "$what"
  mkdir -p "$(dirname "$dir")"
  "$PY" -m mpo_train "${TRAIN_ARGS[@]}" output_dir="$dir" "$@" > "$dir.log" 2>&1 || {
    tail -n 20 "$dir.log"; echo "failed: $what (log: $dir.log)"; return 1; }
}
TRAIN_ARGS=(--config "$ROOT/mpo_train/recipes/tiny_cpu.yaml" eval_fraction=0 save_steps=100000 num_workers=0
            warmup_ratio=0.02 max_length=512)
# After the first stage the image side (vision tower and projector) stays as that stage learned it: the shift and
# the preference arms change how the model answers, not how it sees. (Measured with it trained too: the same lift
# and collapse, but MPO no better than continued SFT beyond noise; see LOG.md.)
FROZEN=(freeze_vision_tower=true freeze_projector=true)

# 1. the task (train questions = the build's source; held-out questions, also with shuffled images) and the model
say "task data and tiny model"
if [[ -f "$OUT/data/task.json" ]]; then  # resuming: OUT must hold the same sizes and draw, or nothing would be redone
  "$PY" - "$OUT/data/task.json" "$TRAIN" "$TEST" "$SFT" "$TASK_SEED" <<'EOF' || exit 1
import json, sys
path, *asked = sys.argv[1:]
have = json.load(open(path))
for key, value in zip(("train", "test", "sft", "seed"), asked):
    if str(have.get(key)) != value:
        sys.exit(f"{path}: {key} is {have.get(key)} but this run asks for {value}; give another OUT")
EOF
fi
[[ -f "$OUT/data/task.json" ]] || "$PY" -m experiments.tiny_grid.generate data "$OUT/data" --train $TRAIN --test $TEST \
  --sft $SFT --seed $TASK_SEED
[[ -f "$OUT/model/config.json" ]] || "$PY" -m experiments.tiny_grid.generate model "$OUT/model" --hidden $HIDDEN \
  --layers $LAYERS --seed $TASK_SEED

# 2. the start: learn the task with CoT and direct answers together (lr 1e-3, cosine: at 3e-3 the full-size model
# never learned to copy the asked colour; the toy model of --quick needs 3e-3 to learn the format in 200 steps),
# then train mostly on direct answers (90 %, constant lr) so that CoT degrades while direct answering improves:
# the paper's SFT model, whose CoT is worse than its direct answers
train_step "SFT on CoT and direct answers ($COT_STEPS steps)" "$OUT/sft_cot" model="$OUT/model" \
  data="[$OUT/data/sft_cot.jsonl,$OUT/data/sft_shift.jsonl]" loss_weights=[0,0,1] max_steps=$COT_STEPS \
  per_device_batch_size=$BATCH learning_rate=$START_LR
train_step "SFT shift to direct answers ($SHIFT_STEPS steps)" "$OUT/sft" model="$OUT/sft_cot/final" \
  data="[$OUT/data/sft_shift.jsonl]" loss_weights=[0,0,1] max_steps=$SHIFT_STEPS per_device_batch_size=$BATCH \
  learning_rate=1e-3 lr_scheduler=constant "${FROZEN[@]}"

# 3. preference data from the start, the paper's way: N samples at T = 1, correctness and format pairs
say "mmpr.build: $N samples per training question at T = 1"
[[ -f "$OUT/pairs/manifest.json" ]] || "$PY" -m mmpr.build --model "$OUT/sft/final" --engine transformers \
  --sources "synthetic_grid=$OUT/data/train.jsonl" --out "$OUT/pairs" --n $N --temperature 1.0 --max-tokens 96

evaluate() {  # evaluate MODEL DIR [VARIANT]: greedy CoT and direct answers on the held-out questions (into
  # DIR/cot and DIR/direct), or on their VARIANT (test_VARIANT.parquet, into DIR/cot_VARIANT and DIR/direct_VARIANT)
  local prompt to
  for prompt in cot direct; do
    to="$2/$prompt${3:+_$3}"
    [[ -f "$to/results.json" ]] || "$PY" -m evals.run --tasks synthetic_grid --model "$1" --engine transformers \
      --prompt $prompt --data "synthetic_grid=$OUT/data/test${3:+_$3}.parquet" --out "$to" | tail -2
  done
}
say "evaluating the start (and with shuffled images)"
evaluate "$OUT/sft/final" "$OUT/eval/sft/seed0"
evaluate "$OUT/sft/final" "$OUT/eval/sft/seed0" shuffled

# 4-5. the arms: same start, same pairs, same steps; (name, loss_weights, lr). The seeds run side by side, one
# torch thread each.
ARMS=("sft_chosen [0,0,1] $LR" "dpo [1,0,0] $LR" "mpo [0.8,0.2,1.0] $LR"
      "high_lr_dpo [1,0,0] $HIGH_LR" "high_lr_mpo [0.8,0.2,1.0] $HIGH_LR")
run_seed() {  # run_seed SEED: train and evaluate every arm of one seed
  local seed=$1 arm name weights lr dir
  export OMP_NUM_THREADS=1
  for arm in "${ARMS[@]}"; do
    read -r name weights lr <<< "$arm"
    dir="$OUT/arms/$name/seed$seed"
    train_step "arm $name, seed $seed: loss_weights=$weights lr=$lr, $ARM_STEPS steps x 8 pairs" "$dir" \
      model="$OUT/sft/final" data="[$OUT/pairs]" loss_weights="$weights" learning_rate=$lr max_steps=$ARM_STEPS \
      per_device_batch_size=8 reference=online seed=$seed "${FROZEN[@]}"
    evaluate "$dir/final" "$OUT/eval/$name/seed$seed"
  done
}
pids=()
for seed in $SEEDS; do
  run_seed "$seed" & pids+=($!)
done
for pid in "${pids[@]}"; do
  wait "$pid" || { echo "an arm failed (its log's end is above)"; exit 1; }
done

# 6. the table, the chart, the gate checks and the effects
say "report"
"$PY" -m experiments.tiny_grid.report "$OUT"
say "done: $OUT/results.json, $OUT/results.md, $OUT/results.png"
