# Sourced by the benchmarks/gpu_*.sh scripts, run from the repository root: results under $OUT, the project on
# PYTHONPATH, log LINE (to the screen and $OUT/log.txt), want PART (is PART in $PARTS, default $DEFAULT_PARTS).
set -uo pipefail
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PY:-python3}
log() { echo "== $*" | tee -a "$OUT/log.txt"; }
PARTS=" ${PARTS:-${DEFAULT_PARTS:-}} "
want() { [[ $PARTS == *" $1 "* ]]; }
