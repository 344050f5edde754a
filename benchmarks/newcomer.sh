#!/usr/bin/env bash
# A newcomer's walk through the README, scripted: a fresh virtual environment in a temp dir, the installs
# the Makefile does, then the README's commands in order, at toy size.
#
#   bash benchmarks/newcomer.sh          # PYTHON defaults to python3; KEEP=1 keeps the temp dir
#
# 1. torch==2.13.0, then vlmkit with the `plot` extra only (what `make demo` installs), and `vlmkit demo`
#    at toy size: the demo must run with nothing more.
# 2. the search, serve and offline extras, plus the tools the walk uses (openai, scikit-image for photos);
#    `vlmkit classify` and `vlmkit embed` on the demo's CLIP, `vlmkit ask` on the demo's VLM.
# 3. `vlmkit index` of scikit-image's sample photos with the default offline model, `vlmkit search` by
#    text and by image, `vlmkit tag`.
# 4. `vlmkit serve` in the background on a free port, a chat with an image through the openai client
#    (text part first, as in the README; the answer must equal `vlmkit ask`'s), then the server stops.
#
# Nothing comes from a model hub (HF_HUB_OFFLINE=1 after the installs); pip reaches the package index.
# Each step is echoed with its command; any failure ends the walk with a non-zero status.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vlmkit-newcomer.XXXXXX")
SERVER_PID=
START=$SECONDS
TIMES=()

cleanup() {
  local rc=$?
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  if ((rc == 0)); then echo "newcomer walk: passed in $((SECONDS - START)) s"; else echo "newcomer walk: FAILED (rc $rc)"; fi
}
trap cleanup EXIT

STEP_NAME= STEP_START=
step() {  # step NAME: end the previous step (recording its time), announce the next
  if [[ -n $STEP_NAME ]]; then TIMES+=("$(printf '%5d s  %s' $((SECONDS - STEP_START)) "$STEP_NAME")"); fi
  STEP_NAME=$1 STEP_START=$SECONDS
  echo
  echo "== $1"
}
run() {  # run COMMAND...: echo it, then run it
  echo "+ $*" >&2
  "$@"
}

cd "$WORK"
VENV=$WORK/venv
PY=$VENV/bin/python
check_torch() { run "$PY" -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"; }

step "fresh virtual environment in $WORK"
run "$PYTHON" -m venv "$VENV"
run "$PY" -m pip install -q --upgrade pip

step "install torch==2.13.0, then vlmkit[plot] (what make demo installs)"
run "$PY" -m pip install -q torch==2.13.0
run "$PY" -m pip install -q -e "$REPO[plot]"
check_torch

export VLMKIT_CACHE=$WORK/cache HF_HUB_OFFLINE=1 TQDM_DISABLE=1 PYTHONUNBUFFERED=1
export PATH=$VENV/bin:$PATH
DEMO=$WORK/demo_out

step "vlmkit demo at toy size"
run vlmkit demo --out "$DEMO" --train-images 200 --test-images 50 --steps 5 --vlm-steps 5
for f in retrieval.png zero_shot.png vlm_answers.png clip_run/metrics.png clip_run/model instruct_run/model; do
  [[ -e $DEMO/$f ]] || { echo "the demo did not write $f" >&2; exit 1; }
done

step "install the search, serve and offline extras, and the walk's tools (openai, scikit-image)"
run "$PY" -m pip install -q -e "$REPO[plot,search,serve,offline]" "openai>=1.40" "scikit-image>=0.22"
check_torch

CLIP=$DEMO/clip_run/model
VLM=$DEMO/instruct_run/model
mapfile -t SHAPES < <(find "$DEMO/shapesworld/test" -name '*.png' | sort | head -n 3)
((${#SHAPES[@]} == 3)) || { echo "no ShapesWorld test images under $DEMO/shapesworld/test" >&2; exit 1; }

step "vlmkit info, classify and embed on the demo's CLIP"
run vlmkit info "$CLIP"
run vlmkit classify "${SHAPES[@]}" --labels "red circle,blue square,green triangle" --model "$CLIP"
run vlmkit embed --model "$CLIP" "${SHAPES[@]}" --out "$WORK/images.npy"
run vlmkit embed --model "$CLIP" --text "a red circle" "a blue square" --out "$WORK/texts.npy"
run "$PY" -c "import numpy as np; a, b = np.load('$WORK/images.npy'), np.load('$WORK/texts.npy');
assert a.shape[0] == 3 and b.shape[0] == 2 and a.shape[1] == b.shape[1], (a.shape, b.shape); print(a.shape, b.shape)"

step "vlmkit ask on the demo's VLM"
QUESTION="what colour is the biggest shape?"
run vlmkit ask "${SHAPES[0]}" "$QUESTION" --model "$VLM" --max-new-tokens 16 | tee "$WORK/ask.txt"

step "vlmkit index of scikit-image's sample photos (default offline model)"
PHOTOS=$WORK/photos
run "$PY" - "$PHOTOS" <<'EOF'
import sys
from pathlib import Path

from PIL import Image
from skimage import data

out = Path(sys.argv[1])
out.mkdir(parents=True)
for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry"):
    Image.fromarray(getattr(data, name)()).save(out / f"{name}.png")
print(sorted(p.name for p in out.iterdir()))
EOF
IDX=$WORK/photos.idx
run vlmkit index "$PHOTOS" --index "$IDX" --no-progress

step "vlmkit search by text and by image, vlmkit tag"
run vlmkit search "$IDX" "a cup of coffee" -k 3 --html "$WORK/results.html"
run vlmkit search "$IDX" --image "$PHOTOS/chelsea.png" -k 3 | tee "$WORK/by_image.txt"
grep -q chelsea "$WORK/by_image.txt" || { echo "searching by chelsea.png did not find it" >&2; exit 1; }
run vlmkit tag "$IDX" --labels "cat,coffee,person,rocket"

step "vlmkit serve in the background"
PORT=$("$PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
echo >&2 "+ vlmkit serve --index $IDX --model $CLIP --vlm $VLM --port $PORT --api-key KEY &"
vlmkit serve --index "$IDX" --model "$CLIP" --vlm "$VLM" --port "$PORT" --api-key KEY >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
run "$PY" - "$PORT" "$SERVER_PID" <<'EOF'
import os, sys, time, urllib.request

port, pid = sys.argv[1], int(sys.argv[2])
for _ in range(240):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
            print(reply.read().decode())
            break
    except OSError:
        os.kill(pid, 0)  # the server died: ProcessLookupError ends the walk
        time.sleep(0.5)
else:
    sys.exit("the server did not answer /healthz within 120 s")
EOF

step "a chat with an image through the openai client"
run "$PY" - "$PORT" "${SHAPES[0]}" "$QUESTION" "$WORK/ask.txt" <<'EOF'
import base64, sys
from pathlib import Path

from openai import OpenAI

port, image, question, asked = sys.argv[1:]
client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="KEY", max_retries=0, timeout=120)
models = [m.id for m in client.models.list().data]
print("models:", models)
assert "instruct_run" in models and "clip_run" in models, models
url = "data:image/png;base64," + base64.b64encode(Path(image).read_bytes()).decode()
reply = client.chat.completions.create(model="instruct_run", max_tokens=16, messages=[{"role": "user", "content": [
    {"type": "text", "text": question},
    {"type": "image_url", "image_url": {"url": url}}]}])
answer = reply.choices[0].message.content
print(f"answer: {answer!r} ({reply.usage.prompt_tokens} prompt tokens)")
expected = Path(asked).read_text().strip()
assert answer.strip() == expected, f"the server answered {answer!r}, vlmkit ask {expected!r}"
EOF

step "stop the server"
echo "+ kill $SERVER_PID" >&2
kill "$SERVER_PID"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=
tail -n 5 "$WORK/serve.log"
((rc == 0 || rc == 143)) || { echo "the server exited with status $rc" >&2; exit 1; }

step "done"
echo
echo "step times:"
printf '%s\n' "${TIMES[@]}"
