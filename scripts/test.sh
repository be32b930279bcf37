#!/usr/bin/env bash
# The test command of the README: installs what it needs, builds the C++ parser and its tests, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -s -C tests/jetson/parser OUT="$PWD/build/parser-tests" -j2 >/dev/null
exec .venv/bin/python -m pytest "$@"
