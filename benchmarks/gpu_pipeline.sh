#!/usr/bin/env bash
# The ShapesWorld VLM pipeline (README, "Tiny VLM pipeline") with GPU-sized step counts: clip, lm, align
# (decoder trained too), instruct (vision tower trained too), then `vlmkit eval` on the test split.
# Step counts come from the variables below; the report lands in /tmp/gpu_eval.
set -euo pipefail
VLMKIT="${PYTHON:-python3} -m vlmkit"
DATA=${DATA:-/tmp/gpu_sw} N_IMAGES=${N_IMAGES:-10000} WORK=${WORK:-/tmp/gpu_runs}
CLIP_STEPS=${CLIP_STEPS:-2400} LM_STEPS=${LM_STEPS:-300} ALIGN_STEPS=${ALIGN_STEPS:-600}
INSTRUCT_STEPS=${INSTRUCT_STEPS:-3000} EVAL_LIMIT=${EVAL_LIMIT:-200} PRECISION=${PRECISION:-bf16}
common=(--precision "$PRECISION" --log-every 100)
stage() { echo "-- $1 at ${SECONDS} s"; }
warmup() { echo $(($1 < $2 ? $1 : $2)); } # warmup STEPS WANTED: no more warm-up steps than steps

stage data
[ -d "$DATA/compositional" ] || $VLMKIT data shapes --out "$DATA" --n "$N_IMAGES" --split all --n-val 100 --n-test 1000 --n-compositional 1000
stage clip
$VLMKIT train clip --data "$DATA/train" --eval-data "$DATA/test" --out "$WORK/clip" --steps "$CLIP_STEPS" \
  --batch-size 128 --lr 1e-3 --warmup-steps "$(warmup "$CLIP_STEPS" 50)" --conv-stem 3 --conv-stem-norm batch --caption-word-loss 1 \
  --hard-negatives --eval-every 0 "${common[@]}"
stage lm
$VLMKIT train lm --data "$DATA/train" --out "$WORK/lm" --steps "$LM_STEPS" --batch-size 32 --lr 3e-3 \
  --warmup-steps "$(warmup "$LM_STEPS" 15)" "${common[@]}"
stage align
$VLMKIT train align --train-decoder --data "$DATA/train" --vision-from "$WORK/clip" \
  --decoder-from "$WORK/lm/model" --out "$WORK/align" --steps "$ALIGN_STEPS" --batch-size 64 --lr 1e-3 \
  --warmup-steps "$(warmup "$ALIGN_STEPS" 30)" "${common[@]}"
stage instruct
$VLMKIT train instruct --train-vision --data "$DATA/train" --from "$WORK/align/model" \
  --out "$WORK/vlm" --steps "$INSTRUCT_STEPS" --batch-size 32 --lr 1e-3 --warmup-steps "$(warmup "$INSTRUCT_STEPS" 60)" "${common[@]}"
stage eval
$VLMKIT eval --model "$WORK/vlm/model" --data "$DATA/test" --limit "$EVAL_LIMIT" --out /tmp/gpu_eval
stage done
