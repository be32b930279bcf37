#!/usr/bin/env bash
# Bounded libFuzzer run of the parser under AddressSanitizer + UndefinedBehaviorSanitizer.
#   bash tests/jetson/parser/fuzz/run_fuzz.sh [SECONDS]      (default 60; needs clang: apt-get install clang)
# Prints the executions and findings; exits non-zero on a finding.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-60}
CXX=${CLANG:-$(command -v clang++ || command -v clang++-14 || true)}
if [ -z "$CXX" ]; then echo "clang++ not found: apt-get install clang" >&2; exit 2; fi
work=$(mktemp -d)
"$CXX" -std=c++11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$here/../host_include" -I"$here/.." "$here/fuzz_parser.cpp" "$here/../nvdsparsebbox_edgeexport.cpp" -o "$work/fuzz_parser"
mkdir -p "$work/corpus"
set +e
"$work/fuzz_parser" "$work/corpus" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 2>"$work/log"
rc=$?
set -e
grep -E "stat::number_of_executed_units|stat::peak_rss_mb|ERROR|SUMMARY" "$work/log" || true
findings=$(grep -c "ERROR: " "$work/log" || true)
echo "fuzz: ${secs}s, findings: ${findings}, exit code ${rc}"
[ "$rc" -eq 0 ] && [ "$findings" -eq 0 ]
