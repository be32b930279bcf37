#!/usr/bin/env bash
# Create .venv and install the project's host requirements into it. Idempotent: reinstalls only when a
# requirements file changed. Used by scripts/demo.sh, scripts/test.sh and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.edgeexport-requirements
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing requirements (torch and torchvision come from this machine's wheel cache where present)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import torch, torchvision, onnx, onnxruntime, onnxsim, cv2" \
    || { echo "error: the host requirements did not install" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
