#!/usr/bin/env bash
# Create .venv and install the project into it, editable, with its development extras (setup.cfg) under the
# pins of scripts/constraints.txt. Idempotent: reinstalls only when one of those files changed. Used by
# scripts/demo.sh, scripts/test.sh and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

bash scripts/setup_debian.sh
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.edgeexport-install
want=$(cat pyproject.toml setup.cfg scripts/constraints.txt scripts/setup.sh scripts/torch_cpu_index.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing edgeexport[dev] (torch and torchvision come from this machine's wheel cache where present)"
  cpu_index=$(bash scripts/torch_cpu_index.sh)
  if [ -n "$cpu_index" ]; then
    # no NVIDIA GPU here: PyTorch's CPU builds, at the pinned versions (2.14.1 admits 2.14.1+cpu)
    echo "no NVIDIA GPU: torch and torchvision CPU builds from $cpu_index"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -c scripts/constraints.txt \
      --index-url "$cpu_index" torch torchvision
  else
    echo "torch from the package index as configured (on Linux, PyPI's torch is the CUDA build: .venv ~6 GB)"
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c scripts/constraints.txt -e ".[dev]"
  # API truth for the test doubles: typed stubs of TensorRT 10.13's Python bindings, kept OUT of the import path
  # (installed, its tensorrt/ folder of .pyi files would import as an empty namespace package), without their
  # dependencies (TensorRT itself, which PyPI only points to). The tests parse the .pyi files.
  rm -rf .venv/stubs
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --target .venv/stubs \
    "tensorrt-stubs==10.13.0.35.1"
  # and of DeepStream's Python bindings (pyds): 1.1.1 is DeepStream 6.0.1's (Python 3.6), 1.1.8 is 6.3's (3.8);
  # only .pyi files, fetched for the Python they were written for
  for pair in "1.1.1.2 3.6 pyds-1.1.1" "1.1.8.3 3.8 pyds-1.1.8"; do
    set -- $pair
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: --ignore-requires-python \
      --python-version "$2" --target ".venv/stubs/$3" "pyds-stubs==$1"
  done
  .venv/bin/python -c "import torch, torchvision, onnx, onnxruntime, onnxsim, cv2, edgeexport" \
    || { echo "error: the host requirements did not install" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
