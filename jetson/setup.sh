#!/usr/bin/env bash
# The board's set-up, once, in the bundle on the Jetson (or any TensorRT + DeepStream machine):
#
#   bash jetson/setup.sh            read the versions, install pycuda, build the parser
#   bash jetson/setup.sh --check    read the versions only; install and build nothing
#
# 1. reads what the board has: L4T (and the JetPack package), CUDA's nvcc, Python and numpy, TensorRT's Python
#    module, DeepStream (its nvds_version.h, as edgeexport.device.deepstream.install reads it), pycuda;
# 2. puts CUDA's bin folder on PATH for what it runs: pycuda has no wheel for the Jetson and builds from source
#    with nvcc (pycuda 2022.1, the last for Python 3.6, is an sdist on PyPI);
# 3. installs what jetson/requirements.txt names when pycuda is missing (pip --user outside a virtualenv);
# 4. builds the nvinfer parser where infer_config.txt's custom-lib-path points: make -C jetson/parser.
# It ends with one line: "board ready: ..." (exit 0), or "missing: ..." naming each missing piece and how to get
# it (exit 1). Paths, for an install outside the usual places: CUDA_HOME (/usr/local/cuda), DEEPSTREAM_DIR
# (/opt/nvidia/deepstream/deepstream), TEGRA_RELEASE (/etc/nv_tegra_release), PYTHON (python3).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
check_only=0
case "${1:-}" in
  "") ;;
  --check) check_only=1 ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "error: unknown argument ${1} (usage: bash jetson/setup.sh [--check])" >&2; exit 2 ;;
esac
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
DEEPSTREAM_DIR=${DEEPSTREAM_DIR:-/opt/nvidia/deepstream/deepstream}
TEGRA_RELEASE=${TEGRA_RELEASE:-/etc/nv_tegra_release}
PYTHON=${PYTHON:-python3}
# TensorRT 8.2 (JetPack 4.6.x's) is the oldest release whose sources the device side was checked against;
# DeepStream 6.0 the oldest whose config parsers were (edgeexport.device.deepstream.install.KNOWN_VERSIONS).
MIN_TENSORRT=8.2
MIN_DEEPSTREAM=6.0
missing=()
have=()

version_at_least() {  # version_at_least 8.2.1 8.2 -> true
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -t. -k1,1n -k2,2n -k3,3n | head -1)" = "$2" ]
}
py() { "$PYTHON" -c "$1" 2>/dev/null; }
# found NAME VERSION MINIMUM IF_ABSENT [IF_OLD]: VERSION (empty when absent) goes to have, or a line to missing
found() {
  if [ -z "$2" ]; then missing+=("$4")
  elif ! version_at_least "$2" "$3"; then missing+=("$1 >= $3 (found $2${5:+: $5})")
  else have+=("$1 $2"); fi
}

# -- 1. what the board has ---------------------------------------------------------------------------------------
if [ -r "$TEGRA_RELEASE" ]; then
  # "# R32 (release), REVISION: 6.1, GCID: ..." is L4T R32.6.1
  l4t=$(sed -n 's/^# R\([0-9]*\) (release), REVISION: \([0-9.]*\),.*/R\1.\2/p' "$TEGRA_RELEASE" | head -1)
  jetpack=$(dpkg-query -W -f='${Version}' nvidia-jetpack 2>/dev/null || true)
  have+=("L4T ${l4t:-unknown}${jetpack:+ (nvidia-jetpack $jetpack)}")
else
  have+=("not a Jetson (no $TEGRA_RELEASE)")
fi

export PATH="$CUDA_HOME/bin:$PATH"
if command -v nvcc >/dev/null 2>&1; then
  cuda=$(nvcc --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p' | head -1)
  have+=("CUDA ${cuda:-unknown} ($(command -v nvcc))")
else
  missing+=("CUDA's nvcc, not in $CUDA_HOME/bin (JetPack's CUDA toolkit: sudo apt-get install nvidia-jetpack; or set CUDA_HOME)")
fi

python_version=$(py 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
if [ -z "$python_version" ]; then
  missing+=("Python 3 ($PYTHON does not run: sudo apt-get install python3)")
else
  found Python "$python_version" 3.6 ""
  numpy=$(py 'import numpy; print(numpy.__version__)')
  if [ -n "$numpy" ]; then have+=("numpy $numpy"); else missing+=("numpy (sudo apt-get install python3-numpy)"); fi
  found TensorRT "$(py 'import tensorrt; print(tensorrt.__version__)')" "$MIN_TENSORRT" \
    "TensorRT's Python module (sudo apt-get install python3-libnvinfer; it comes with JetPack)" "upgrade JetPack"
fi

header="$DEEPSTREAM_DIR/sources/includes/nvds_version.h"
ds=""
if [ -r "$header" ]; then  # NVDS_VERSION_MAJOR/MINOR/MICRO (nvds_version.h:32-34 in 6.0.1 and 6.3)
  ds=$(for k in MAJOR MINOR MICRO; do sed -n "s/^#define[[:space:]]*NVDS_VERSION_$k[[:space:]]*\([0-9]*\).*/\1/p" "$header"; done | paste -sd. -)
fi
found DeepStream "$ds" "$MIN_DEEPSTREAM" "DeepStream (no $header: install DeepStream's SDK, or set DEEPSTREAM_DIR)"

# -- 2, 3. pycuda (built from source with nvcc) ------------------------------------------------------------------
pycuda=""
pycuda_version='import pycuda, pycuda.driver; print(getattr(pycuda, "VERSION_TEXT", "(version unknown)"))'
[ -n "$python_version" ] && pycuda=$(py "$pycuda_version")
if [ -z "$pycuda" ] && [ "$check_only" -eq 0 ] && [ -n "$python_version" ] && command -v nvcc >/dev/null 2>&1; then
  if ! py 'import pip' >/dev/null; then
    missing+=("pip, to install pycuda (sudo apt-get install python3-pip)")
  elif [ ! -f "$(py 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ]; then
    missing+=("Python's headers, to build pycuda (sudo apt-get install python3-dev)")
  else
    user=--user  # the system Python (sudo-free); a virtualenv takes the install itself
    [ "$(py 'import sys; print(sys.prefix != getattr(sys, "base_prefix", sys.prefix) or hasattr(sys, "real_prefix"))')" = True ] && user=""
    echo "installing pycuda from $here/requirements.txt (it builds from source with nvcc: minutes on a Jetson)"
    if "$PYTHON" -m pip install $user -r "$here/requirements.txt"; then
      pycuda=$(py "$pycuda_version")
    fi
  fi
fi
if [ -n "$pycuda" ]; then
  have+=("pycuda $pycuda")
elif [ "$check_only" -eq 1 ]; then
  missing+=("pycuda (bash jetson/setup.sh installs it)")
elif ! command -v nvcc >/dev/null 2>&1 || [ -z "$python_version" ]; then
  missing+=("pycuda (not installed: it builds from source with nvcc, for the Python above)")
elif ! printf '%s\n' "${missing[@]:-}" | grep -q "to install pycuda\|to build pycuda"; then
  missing+=("pycuda (its install failed: see pip's output above; it needs nvcc on PATH and python3-dev)")
fi

# -- 4. the parser, where custom-lib-path points ----------------------------------------------------------------
library="$here/parser/libnvdsparsebbox_edgeexport.so"
if [ "$check_only" -eq 0 ] && [ -n "$ds" ]; then
  if make -C "$here/parser" DS_INCLUDE_DIR="$DEEPSTREAM_DIR/sources/includes" CUDA_INCLUDE_DIR="$CUDA_HOME/include"; then
    have+=("parser built ($library)")
  else
    missing+=("the parser library (make -C $here/parser failed: see its message above)")
  fi
elif [ -f "$library" ]; then
  have+=("parser built ($library)")
else
  missing+=("the parser library ($library: bash jetson/setup.sh builds it)")
fi

# -- the one line -----------------------------------------------------------------------------------------------
join() { local out="" item; for item in "$@"; do out="${out:+$out; }$item"; done; echo "$out"; }
if [ "${#missing[@]}" -eq 0 ]; then
  echo "board ready: $(join "${have[@]}")"
  echo "  for your shell too (nvcc was on this script's PATH only): export PATH=$CUDA_HOME/bin:\$PATH"
  exit 0
fi
echo "missing: $(join "${missing[@]}")  (found: $(join "${have[@]}"))"
exit 1
