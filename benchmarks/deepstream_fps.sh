#!/usr/bin/env bash
# Run deepstream-app on a bundle's FPS config (fakesink, sync=0, perf measurement on) and report the mean of
# the FPS it prints in its **PERF lines.
#   bash benchmarks/deepstream_fps.sh BUNDLE [SECONDS]
set -euo pipefail
bundle=${1:?usage: deepstream_fps.sh BUNDLE [SECONDS]}
secs=${2:-60}
command -v deepstream-app >/dev/null || { echo "deepstream-app not found: run this on a Jetson with DeepStream" >&2; exit 2; }
log=$(mktemp)
cd "$bundle"
timeout "$secs" deepstream-app -c app_config_fps.txt >"$log" 2>&1 || true
python3 "$(dirname "$0")/deepstream_perf.py" "$log"
