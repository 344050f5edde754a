#!/usr/bin/env bash
# The checks that need a GPU, as one script: the test suite with CUDA visible (the trainer picks CUDA
# when it is there, and tests/models/test_cuda_parity.py compares GPU with CPU results), the speed
# benchmarks on the GPU, the ShapesWorld VLM pipeline at GPU scale (benchmarks/gpu_pipeline.sh), and grounding
# on that pipeline's VLM (benchmarks/gpu_grounding.sh).
#
#   OUT=gpu_out bash benchmarks/gpu_check.sh            # PYTHON defaults to python3, logs go to $OUT
#
# The parts' limits add up to about 800 s, more than one device call may run (600 s): run it as two calls,
#   PARTS="tests bench" bash benchmarks/gpu_check.sh   (at most 360 s)
#   PARTS="pipeline grounding" bash benchmarks/gpu_check.sh   (at most 440 s; grounding needs the pipeline's VLM)
#
# Each part has its own time limit (seconds, the variables below), so one slow part cannot starve the
# rest; a part that runs out says so in its log. Packages the machine lacks (fastapi, faiss, ...) only
# make their tests fail to import; those test folders are left out.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-gpu_out}
PARTS=${PARTS:-tests bench pipeline grounding}
TEST_S=${TEST_S:-150} BENCH_S=${BENCH_S:-120} PIPELINE_S=${PIPELINE_S:-200} GROUND_S=${GROUND_S:-240}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src:$PWD/tests PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore TQDM_DISABLE=1
VLMKIT="$PYTHON -m vlmkit"

wanted() { [[ " $PARTS " == *" $1 "* ]]; }

part() {  # part NAME SECONDS COMMAND...: run with a limit, log to $OUT/NAME.log, report the time
  local name=$1 limit=$2 start=$SECONDS
  shift 2
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "== $name: rc $rc in $((SECONDS - start)) s (limit $limit)" | tee -a "$OUT/summary.log"
  tail -n 25 "$OUT/$name.log"
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PYTHON -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)"
} | tee "$OUT/summary.log"

if wanted tests; then
  part tests "$TEST_S" $PYTHON -m pytest tests -q -n 8 -p no:cacheprovider \
    --ignore=tests/serving --ignore=tests/search --ignore=tests/data/test_shapesworld_masks.py -m "not slow"
fi

if wanted bench; then
  bench_start=$SECONDS
  part generate "$BENCH_S" $PYTHON benchmarks/generate.py --device cuda --repeats 2 --models 25m,135m,llava
  part encode 45 $PYTHON benchmarks/encode.py --device cuda --repeats 3 --image-batch 64 --text-batch 256
  part train 45 $PYTHON benchmarks/train.py --device cuda --repeats 3 --batch 128
  echo "benchmarks: $((SECONDS - bench_start)) s" >>"$OUT/summary.log"
fi

if wanted pipeline; then
  part pipeline "$PIPELINE_S" bash benchmarks/gpu_pipeline.sh
  cp /tmp/gpu_eval/report.md "$OUT/eval_vlm.md" 2>/dev/null
fi
if wanted grounding; then
  part grounding "$GROUND_S" bash benchmarks/gpu_grounding.sh
  for split in test compositional; do cp "/tmp/gpu_ground_$split/report.md" "$OUT/eval_ground_$split.md" 2>/dev/null; done
fi
cat "$OUT/summary.log"
