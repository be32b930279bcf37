#!/usr/bin/env bash
# Create .venv and install the project into it, editable, with its development extras (pyproject.toml) under the
# pins of scripts/constraints.txt. Idempotent: reinstalls only when one of those files changed. Used by
# scripts/demo.sh, scripts/test.sh and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# Real parts from Debian, where the tests use them: GStreamer with PyGObject (the pyds app's pipeline, NVIDIA's
# elements stood in by standard ones; x264 and libav for H.264), and mosquitto (a real MQTT broker for
# emulate --publish). Installed once; without apt (or root) the tests that need them say so and skip.
DEBIAN_PACKAGES="python3-gi python3-numpy gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  gstreamer1.0-libav gir1.2-gst-rtsp-server-1.0 mosquitto"
missing=""
for pkg in $DEBIAN_PACKAGES; do
  case "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null)" in ii*) ;; *) missing="$missing $pkg" ;; esac
done
if [ -n "${missing// /}" ] && command -v apt-get >/dev/null; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  echo "installing from Debian: $missing"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing; } \
      >/tmp/edgeexport-apt.log 2>&1; then
    echo "warning: apt-get could not install $missing (see /tmp/edgeexport-apt.log); their tests will skip" >&2
  fi
fi
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
