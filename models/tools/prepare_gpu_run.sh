#!/usr/bin/env bash
# Before a recognizer fine-tuning run on a lent GPU machine: gather into .gpu/ (git-ignored) what
# that machine cannot fetch or does not have. It is lent the repository alone, reaches no network,
# and its image has torch, onnx, onnxruntime, OpenCV and Pillow but not the rest:
#   .gpu/fonts/            the OFL plate fonts (npm registry)
#   .gpu/eval_crops.npz    the dev splits' plate crops and labels, to measure on (the photos stay here)
#   .gpu/wheels/           pydantic and onnx2torch, for the machine's Python 3.12
# Then run models/tools/gpu_finetune.sh there (see its header).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
mkdir -p .gpu/wheels
"$PY" models/tools/synth_plates.py --fetch-fonts .gpu/fonts >/dev/null
"$PY" models/tools/finetune_recognizer.py --eval br us --save-eval-crops .gpu/eval_crops.npz
versions=$("$PY" - <<'PYEOF'
from importlib.metadata import version
print(" ".join(f"{name}=={version(name)}" for name in
               ("pydantic", "pydantic-core", "annotated-types", "typing-inspection", "onnx2torch")))
PYEOF
)
# shellcheck disable=SC2086  # one argument per requirement
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/wheels $versions
du -sh .gpu/* >&2
