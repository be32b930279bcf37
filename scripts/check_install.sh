#!/usr/bin/env bash
# What a new user does, in fresh virtual environments outside the checkout (CI runs this before the tests):
#   1. pip install ".[export]" (Python 3.10+), then every console command's --help and the README's API example,
#      whose bundle must carry jetson/ (setup.cfg maps it into the installed package);
#   2. where a Python 3.6 exists (JetPack 4.6's version), pip install "." with JetPack's numpy 1.13.3, then the
#      device commands' --help and an import of the device side.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
PY=${PYTHON:-python3}
# torch with its CUDA libraries is about 6 GB installed; say what the disk has, so "No space left" reads at once
echo "== pip install \".[export]\" in a fresh venv ($($PY --version)); free in $work: $(df -h --output=avail "$work" | tail -1 | tr -d ' ')"
"$PY" -m venv "$work/venv"
quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }  # keeps "$@"'s status
quiet "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check -c scripts/constraints.txt \
  "$repo[export]"
for cmd in edgeexport-train edgeexport-export edgeexport-emulate edgeexport-build-engine edgeexport-parity \
    edgeexport-deepstream-config edgeexport-deepstream-app edgeexport-evaluate; do
  "$work/venv/bin/$cmd" --help >/dev/null
  echo "   $cmd --help: ok"
done
echo "== the README's API example, in $work"
"$work/venv/bin/python" - "$repo/README.md" "$work/example.py" <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
block = re.search(r"<!-- api-example: begin.*?-->\s*```python\n(.*?)```\s*<!-- api-example: end -->", text, re.S)
open(sys.argv[2], "w").write(block.group(1))
PYEOF
(cd "$work" && "$work/venv/bin/python" example.py | tail -3)
# the bundle an installed (not checked-out) edgeexport writes carries the board's files too
for f in jetson/setup.sh jetson/requirements.txt jetson/parser/Makefile jetson/parser/nvdsparsebbox_edgeexport.cpp; do
  [ -f "$work/api_bundle/$f" ] || { echo "error: the installed package wrote a bundle without $f" >&2; exit 1; }
done
echo "   the bundle carries jetson/ (set-up script, requirements, the parser's sources and Makefile)"
py36=""
for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.6*/bin/python3.6 python3.6; do
  if "$candidate" --version >/dev/null 2>&1; then py36=$candidate; break; fi
done
if [ -n "$py36" ]; then
  echo "== pip install \".\" on $($py36 --version 2>&1) with numpy 1.13.3 (JetPack 4.6's)"
  "$py36" -m venv "$work/venv36"
  # pip 21.3.1 is the last pip for Python 3.6; JetPack's pip 9 cannot build from pyproject.toml (PEP 517) at all
  quiet "$work/venv36/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip<22"
  quiet "$work/venv36/bin/python" -m pip install --quiet --disable-pip-version-check "numpy==1.13.3" "$repo"
  for cmd in edgeexport-build-engine edgeexport-parity edgeexport-deepstream-config edgeexport-deepstream-app \
      edgeexport-evaluate; do
    "$work/venv36/bin/$cmd" --help >/dev/null
    echo "   $cmd --help on Python 3.6: ok"
  done
  (cd "$work" && "$work/venv36/bin/python" -c "import numpy, edgeexport, edgeexport.device.tensorrt.build_engine, \
edgeexport.device.check.parity, edgeexport.device.tensorrt.runner, edgeexport.device.deepstream.app_config, \
edgeexport.device.deepstream.pyds_app, edgeexport.device.check.evaluate, edgeexport.device.check.coco_eval, \
edgeexport.device.check.eval_rows; print('   device side imports on Python 3.6 with \
numpy', numpy.__version__)")
else
  echo "== no Python 3.6 on this machine: the Python 3.6 install was NOT checked here"
fi
