#!/usr/bin/env bash
# Prints the package index to take PyTorch's CPU builds from, or nothing: scripts/setup.sh installs torch and
# torchvision from it before the project, so that a machine without an NVIDIA GPU does not carry the CUDA build
# (PyPI's Linux torch wheels bring CUDA's libraries: .venv measured 6.2 GB with them). Nothing is printed on a
# machine with an NVIDIA driver (nvidia-smi), or when the index does not answer within 10 s (then PyPI's build is
# installed, as before). EDGEEXPORT_TORCH_CPU_INDEX names another index; an empty value turns this off.
set -uo pipefail
index=${EDGEEXPORT_TORCH_CPU_INDEX-https://download.pytorch.org/whl/cpu}
[ -n "$index" ] || exit 0
command -v nvidia-smi >/dev/null 2>&1 && exit 0
if curl -fsS -m 10 -o /dev/null "${index%/}/torch/" 2>/dev/null; then
  echo "$index"
fi
exit 0
