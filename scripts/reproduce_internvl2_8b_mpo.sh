#!/usr/bin/env bash
# The paper's run, end to end: InternVL2-8B + MMPR v1.0 -> MPO -> InternVL2-8B-MPO, evaluated against the paper.
#
#   1. fetch the MMPR v1.0 release and the original InternVL2-8B checkpoint from the Hub
#   2. python -m mmpr.convert: the release -> a versioned dataset folder
#   3. python -m mpo_train.convert_internvl: InternVL2-8B (remote-code layout) -> transformers' InternVL layout
#   4. accelerate launch ... -m mpo_train with mpo_train/recipes/internvl2_8b_mpo.yaml (DeepSpeed ZeRO-1, 8 GPUs)
#   5. python -m mpo_train.convert_internvl --to original: the trained model -> the released layout (remote code
#      copied from the source), what VLMEvalKit, lmdeploy and vLLM users load
#   6. python -m evals.run, before and after: MathVista (CoT and direct), MathVision, POPE
#   7. python -m evals.compare: the tables, with the paper's numbers beside ours
#
# Usage (a GPU node with 8 GPUs; deepspeed and the [vllm,evals] extras installed):
#   bash scripts/reproduce_internvl2_8b_mpo.sh
# Every setting below is an environment variable; e.g. NUM_GPUS=4 WORK=/scratch/mpo bash scripts/...
# A step whose finished output is there is skipped, so a rerun resumes (training from its last checkpoint; the
# downloads are skipped once meta.json / config.json exist: rerun `hf download` by hand after an interrupted one).
# CI runs this very script on tiny stand-ins (tests/scripts/test_reproduce_internvl2_8b_mpo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/find_python.sh  # PYTHON: the project's .venv unless set
MMPR_REPO=${MMPR_REPO:-OpenGVLab/MMPR}                     # MMPR v1.0 (the paper's data)
BASE_MODEL=${BASE_MODEL:-OpenGVLab/InternVL2-8B}
WORK=${WORK:-runs/reproduce-internvl2-8b-mpo}
RELEASE_DIR=${RELEASE_DIR:-$WORK/MMPR-v1.0}                 # meta.json + annotations + images
DATASET_DIR=${DATASET_DIR:-$WORK/mmpr-v1.0}                 # python -m mmpr.convert output
ORIGINAL_MODEL_DIR=${ORIGINAL_MODEL_DIR:-$WORK/original/InternVL2-8B}
# the folder names of the evaluated models are what evals.compare matches the paper's numbers by
HF_MODEL_DIR=${HF_MODEL_DIR:-$WORK/hf/InternVL2-8B}
MPO_HF_MODEL_DIR=${MPO_HF_MODEL_DIR:-$WORK/hf/InternVL2-8B-MPO}
MPO_MODEL_DIR=${MPO_MODEL_DIR:-$WORK/original/InternVL2-8B-MPO}
TRAIN_DIR=${TRAIN_DIR:-$WORK/train}
RECIPE=${RECIPE:-mpo_train/recipes/internvl2_8b_mpo.yaml}
NUM_GPUS=${NUM_GPUS:-8}
ACCELERATE_ARGS=${ACCELERATE_ARGS:---config_file mpo_train/accelerate/zero1.yaml --num_processes $NUM_GPUS}
TRAIN_OVERRIDES=${TRAIN_OVERRIDES:-}                        # e.g. "max_steps=10 limit=1000"
EVAL_ENGINE=${EVAL_ENGINE:-vllm}
EVAL_COT_TASKS=${EVAL_COT_TASKS:-mathvista,mathvision,pope}
EVAL_DIRECT_TASKS=${EVAL_DIRECT_TASKS:-mathvista}
EVAL_ARGS=${EVAL_ARGS:-}                                    # e.g. "--limit 100 --data mathvista=/data/mv.parquet"

step() { echo "==> $*"; }

step "1/7 fetch $MMPR_REPO and $BASE_MODEL"
if [ ! -f "$RELEASE_DIR/meta.json" ]; then
  "$PYTHON" -m huggingface_hub.cli.hf download "$MMPR_REPO" --repo-type dataset --local-dir "$RELEASE_DIR"
  for z in "$RELEASE_DIR"/*.zip; do [ -e "$z" ] && unzip -q -n "$z" -d "$RELEASE_DIR"; done
fi
[ -f "$ORIGINAL_MODEL_DIR/config.json" ] || "$PYTHON" -m huggingface_hub.cli.hf download "$BASE_MODEL" --local-dir "$ORIGINAL_MODEL_DIR"

step "2/7 mmpr.convert $RELEASE_DIR -> $DATASET_DIR"
[ -f "$DATASET_DIR/manifest.json" ] || "$PYTHON" -m mmpr.convert "$RELEASE_DIR" --out "$DATASET_DIR" --version 1.0.0

step "3/7 convert $ORIGINAL_MODEL_DIR -> $HF_MODEL_DIR (transformers layout)"
# original_layout/ is written last: its config.json marks a finished conversion
[ -f "$HF_MODEL_DIR/original_layout/config.json" ] || "$PYTHON" -m mpo_train.convert_internvl "$ORIGINAL_MODEL_DIR" "$HF_MODEL_DIR"

step "4/7 MPO training ($NUM_GPUS processes) -> $TRAIN_DIR"
if [ ! -f "$TRAIN_DIR/final/config.json" ]; then
  # shellcheck disable=SC2086  # ACCELERATE_ARGS and TRAIN_OVERRIDES are word lists
  "$PYTHON" -m accelerate.commands.launch $ACCELERATE_ARGS -m mpo_train --config "$RECIPE" \
    model="$HF_MODEL_DIR" "data=[$DATASET_DIR]" output_dir="$TRAIN_DIR" $TRAIN_OVERRIDES
fi
mkdir -p "$(dirname "$MPO_HF_MODEL_DIR")"
ln -sfn "$(realpath "$TRAIN_DIR/final")" "$MPO_HF_MODEL_DIR"

step "5/7 convert the trained model back -> $MPO_MODEL_DIR (original layout)"
[ -f "$MPO_MODEL_DIR/config.json" ] || "$PYTHON" -m mpo_train.convert_internvl "$MPO_HF_MODEL_DIR" "$MPO_MODEL_DIR" \
  --to original --original-from "$ORIGINAL_MODEL_DIR"

# Both layouts hold the same tensors (the conversion is exact), so the transformers-layout folders are evaluated.
step "6/7 evaluate before and after MPO"
for model in "$HF_MODEL_DIR" "$MPO_HF_MODEL_DIR"; do
  name=$(basename "$model")
  # shellcheck disable=SC2086
  "$PYTHON" -m evals.run --tasks "$EVAL_COT_TASKS" --prompt cot --model "$model" --engine "$EVAL_ENGINE" \
    --out "$WORK/eval/$name-cot" $EVAL_ARGS
  # shellcheck disable=SC2086
  "$PYTHON" -m evals.run --tasks "$EVAL_DIRECT_TASKS" --prompt direct --model "$model" --engine "$EVAL_ENGINE" \
    --out "$WORK/eval/$name-direct" $EVAL_ARGS
done

step "7/7 compare with the paper"
base=$(basename "$HF_MODEL_DIR"); mpo=$(basename "$MPO_HF_MODEL_DIR")
"$PYTHON" -m evals.compare "$WORK/eval/$base-cot" "$WORK/eval/$mpo-cot" --out "$WORK/compare-cot"
"$PYTHON" -m evals.compare "$WORK/eval/$base-direct" "$WORK/eval/$mpo-direct" --out "$WORK/compare-direct"
echo "done: model $MPO_MODEL_DIR; tables in $WORK/compare-cot and $WORK/compare-direct"
