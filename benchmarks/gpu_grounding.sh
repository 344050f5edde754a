#!/usr/bin/env bash
# Grounding at GPU scale (issue #20), after benchmarks/gpu_pipeline.sh (same DATA and WORK): the mask
# tokenizer, then the pipeline's VLM taught boxes, referring expressions and masks with the levers measured
# on CPU (ordered location rows, the location code, the scene-size curriculum), scored on test and
# compositional (all-objects AP50, referring accuracy, mask mIoU). Reports land in /tmp/gpu_ground_SPLIT.
set -euo pipefail
VLMKIT="${PYTHON:-python3} -m vlmkit"
DATA=${DATA:-/tmp/gpu_sw} WORK=${WORK:-/tmp/gpu_runs} EVAL_LIMIT=${EVAL_LIMIT:-200} PRECISION=${PRECISION:-bf16}
VAE_STEPS=${VAE_STEPS:-1000} GROUND_STEPS=${GROUND_STEPS:-3000}
common=(--precision "$PRECISION" --log-every 100)
stage() { echo "-- $1 at ${SECONDS} s"; }
warmup() { echo $(($1 < $2 ? $1 : $2)); } # warmup STEPS WANTED: no more warm-up steps than steps

stage mask-vae
$VLMKIT train mask-vae --data "$DATA/train" --out "$WORK/vae" --steps "$VAE_STEPS" --batch-size 64 --lr 2e-3 \
  --weight-decay 0 --warmup-steps "$(warmup "$VAE_STEPS" 50)" "${common[@]}"
stage grounding
$VLMKIT train instruct --data "$DATA/train" --from "$WORK/vlm/model" --out "$WORK/ground" --grounding-share 1.0 \
  --location-init ordered --location-code --curriculum objects --curriculum-steps "$((GROUND_STEPS / 3))" \
  --mask-tokenizer "$WORK/vae/model" --steps "$GROUND_STEPS" --batch-size 32 --lr 1e-3 \
  --warmup-steps "$(warmup "$GROUND_STEPS" 60)" "${common[@]}"
for split in test compositional; do
  stage "eval $split"
  $VLMKIT eval --model "$WORK/ground/model" --data "$DATA/$split" --limit "$EVAL_LIMIT" \
    --mask-tokenizer "$WORK/vae/model" --out "/tmp/gpu_ground_$split"
done
stage done
