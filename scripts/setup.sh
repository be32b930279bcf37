#!/usr/bin/env bash
# Create .venv and install the project into it, editable, with its development extras (pyproject.toml) under the
# pins of scripts/constraints.txt. Idempotent: reinstalls only when one of those files changed. Used by
# scripts/demo.sh, scripts/test.sh and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.edgeexport-install
want=$(cat pyproject.toml scripts/constraints.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing edgeexport[dev] (torch and torchvision come from this machine's wheel cache where present)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c scripts/constraints.txt -e ".[dev]"
  # API truth for the test doubles: typed stubs of TensorRT 10.13's Python bindings, kept OUT of the import path
  # (installed, its tensorrt/ folder of .pyi files would import as an empty namespace package), without their
  # dependencies (TensorRT itself, which PyPI only points to). The tests parse the .pyi files.
  rm -rf .venv/stubs
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --target .venv/stubs \
    "tensorrt-stubs==10.13.0.35.1"
  .venv/bin/python -c "import torch, torchvision, onnx, onnxruntime, onnxsim, cv2, edgeexport" \
    || { echo "error: the host requirements did not install" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
