#!/usr/bin/env bash
# The GPU-marked tests on a real CUDA GPU (no TensorRT there): the cuda-python memory backend's round trips,
# the TensorRT runner's buffer handling on real device pointers, fp16 numerics of the folded graph; then the same
# with pycuda built from its sdist, when the sdist is given. Writes a JSON summary.
#
#   bash benchmarks/gpu_cuda_memory.sh OUT_DIR [BUNDLE] [WHEEL_DIR]
#
# BUNDLE: a bundle exported elsewhere (dynamic batch, batch 4), for a GPU machine without onnxsim/the host stack.
# WHEEL_DIR: pycuda-*.tar.gz and its pure-Python needs as wheels (pytools, mako, platformdirs, siphash24).
set -uo pipefail
out=${1:?usage: gpu_cuda_memory.sh OUT_DIR [BUNDLE] [WHEEL_DIR]}
bundle=${2:-}
wheels=${3:-}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
[ -n "$bundle" ] && export EDGEEXPORT_TEST_BUNDLE=$(cd "$bundle" && pwd)

run_tests() {  # $1: label
    python3 -m pytest -q -p no:cacheprovider -m gpu tests/device/tensorrt/test_gpu_cuda_memory.py tests/export/test_gpu_fp16.py \
        -rA --junitxml="$out/$1.xml" 2>&1 | tee "$out/$1.log"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
run_tests cuda_python

if [ -n "$wheels" ] && ls "$wheels"/pycuda-*.tar.gz >/dev/null 2>&1; then
    cuda_root=$(dirname "$(dirname "$(command -v nvcc)")")
    # pycuda's setup links against libcuda; the toolkit's stub library satisfies the link, the driver's loads at run time
    export CUDA_ROOT=$cuda_root LIBRARY_PATH=$cuda_root/lib64/stubs:${LIBRARY_PATH:-} PATH=$cuda_root/bin:$PATH
    start=$(date +%s)
    if timeout 420 python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir \
            --target /tmp/pycuda-site "$wheels"/*.whl "$wheels"/pycuda-*.tar.gz > "$out/pycuda_build.log" 2>&1; then
        echo "pycuda built in $(( $(date +%s) - start )) s" | tee -a "$out/pycuda_build.log"
        PYTHONPATH=/tmp/pycuda-site${PYTHONPATH:+:$PYTHONPATH} run_tests pycuda
    else
        echo "pycuda did not build (see pycuda_build.log)"; tail -20 "$out/pycuda_build.log"
    fi
fi

python3 - "$out" <<'EOF'
import json, os, sys, xml.etree.ElementTree as ET
out = sys.argv[1]
summary = {"gpu": open(os.path.join(out, "gpu.txt")).read().strip(), "runs": {}}
for label in ("cuda_python", "pycuda"):
    path = os.path.join(out, label + ".xml")
    if not os.path.exists(path):
        continue
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        state = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                state = child.tag + ": " + (child.get("message") or "")[:200]
        cases[case.get("classname").rsplit(".", 1)[-1] + "::" + case.get("name")] = state
    summary["runs"][label] = cases
json.dump(summary, open(os.path.join(out, "h100_cuda_memory.json"), "w"), indent=1)
print(json.dumps(summary, indent=1))
EOF
