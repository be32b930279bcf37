#!/usr/bin/env bash
# Run deepstream-app on a bundle's FPS config (fakesink, sync=0, perf measurement on) and report the FPS it
# prints in its **PERF lines (per stream; the first interval is warm-up).
#   bash benchmarks/deepstream_fps.sh BUNDLE [SECONDS] [--json FILE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)  # before any cd: the helper lies beside this script
usage="usage: deepstream_fps.sh BUNDLE [SECONDS] [--json FILE]"
bundle=${1:?$usage}
secs=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))
[ -f "$bundle/app_config_fps.txt" ] || { echo "error: $bundle/app_config_fps.txt not found (pass a bundle folder)" >&2; exit 2; }
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || { echo "error: SECONDS must be an integer >= 1, got '$secs'" >&2; exit 2; }
command -v deepstream-app >/dev/null || { echo "error: deepstream-app not found: run this on a Jetson with DeepStream" >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
(cd "$bundle" && timeout "$secs" deepstream-app -c app_config_fps.txt >"$log" 2>&1) || true
python3 "$here/deepstream_perf.py" "$log" "$@"
