#!/usr/bin/env bash
# One recognizer fine-tuning run on the lent GPU machine, as one prepared command (the device tool
# lends 15 minutes of device time a session, start and transfers included):
#   here, once:  models/tools/prepare_gpu_run.sh
#   there:       run(command="bash models/tools/gpu_finetune.sh", carry=[".gpu"], timeout_s=600)
# It trains every weight on worn synthetic plates for BUDGET seconds (default 360), with --keep
# pulling towards the shipped model, measures on the dev splits' crops every EVAL_EVERY steps, and
# leaves in $OUT: train.log, train.out (the measurements, the last line JSON), and the best
# checkpoint by the vote of cuts on both splits and the final one, each split into parts under the
# 16 MiB a returned file may have (`cat best-STEP.onnx.part* > best.onnx`). Measure them here with
# `./dev bench accuracy --rec-model FILE`: in the CPU runs the crop figures did not foretell the
# pipeline's (models/README.md), so only that bench decides. Settings: BUDGET BATCH LR KEEP WORN
# MARKS (1; 0: worn plates without border and emblems) EVAL_EVERY WORKERS, BLEND (e.g. "0.25 0.5":
# also return the final weights blended with the shipped ones, --blend), DEVICE (cuda), PYTHON
# (python3), SKIP_WHEELS=1 where the wheels are installed already.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?run it through the device tool, which sets OUT, or set OUT to a folder}"
PYTHON=${PYTHON:-python3}
if [ "${SKIP_WHEELS:-0}" != 1 ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .gpu/wheels/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
run=$(mktemp -d)
"$PYTHON" models/tools/finetune_recognizer.py --train --eval br us --eval-crops .gpu/eval_crops.npz \
  --synthetic-fonts .gpu/fonts --synthetic-worn "${WORN:-0.7}" --steps 100000000 --time-budget "${BUDGET:-360}" \
  --batch "${BATCH:-64}" --lr "${LR:-1e-5}" --keep "${KEEP:-10}" --eval-every "${EVAL_EVERY:-500}" \
  --workers "${WORKERS:-14}" --device "${DEVICE:-cuda}" --out "$run/rec.onnx" --checkpoints \
  $([ "${MARKS:-1}" = 0 ] && echo --synthetic-no-marks) $([ -n "${BLEND:-}" ] && echo --blend ${BLEND:-}) \
  2>"$OUT/train.log" | tee "$OUT/train.out"
"$PYTHON" - "$run" "$OUT" <<'PYEOF'
import json, pathlib, sys
run, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
doc = json.loads((out / "train.out").read_text().strip().splitlines()[-1])
history, last = doc["history"], doc["steps"]
best = max(history, key=lambda h: (h["us_voted"] + h["br_voted"], h["step"]))
print(f"best: step {best['step']}; final: step {last}", file=sys.stderr)
files = {}
for name, step in {"best": best["step"], "final": last}.items():
    if name == "best" and step in (0, last):
        continue  # the shipped model itself, or the same file as the final one
    files[f"{name}-{step}"] = run / ("rec.onnx" if step == last else f"rec-{step}.onnx")
for alpha in doc.get("blends", {}):
    files[f"blend{alpha}-{last}"] = run / f"rec-blend{alpha}.onnx"
for name, src in files.items():
    data = src.read_bytes()
    part = 15 * 1024 * 1024
    for k in range(0, len(data), part):
        (out / f"{name}.onnx.part{k // part}").write_bytes(data[k : k + part])
PYEOF
ls -la "$OUT"
