#!/usr/bin/env bash
# The test command of the README: installs what it needs, builds the C++ parser, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -f jetson/parser/CMakeLists.txt ]; then
  cmake -S jetson/parser -B jetson/parser/build-host -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEEXPORT_HOST_HEADERS=ON >/dev/null
  cmake --build jetson/parser/build-host -j2 >/dev/null
fi
exec .venv/bin/python -m pytest "$@"
