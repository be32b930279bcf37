#!/usr/bin/env bash
# Where the step fed from a JPEG folder loses time on the GPU machine (issue 20), results under $OUT:
#   1. train_speed.py's rows ours, jpeg:gpu, jpeg:cpu side by side (and, with BASE_TREE=dir holding an older
#      checkout's edgeexport/ and benchmarks/, the same rows from that tree first: a before/after in one visit);
#   2. input_profile.py: a few steps of each row under torch.profiler, Chrome traces + summary.json;
#   3. with a py-spy wheel in .gpu/whl: which thread holds the GIL during the jpeg:gpu row (py-spy --gil, raw
#      stacks per thread) and where every thread is (--idle).
#   bash benchmarks/gpu_input_profile.sh        (SMALL=1: a CPU dry run on a small folder)
#   PARTS="1" REPEAT=2: the before/after alone, twice over (before, after, before, after: a run's noise is ~5 %)
#   PARTS="3" SPY_MODES=idle SPY_ROW=jpeg:gpu+compile SPY_FLAGS="--compile-mode reduce-overhead": where the
#      threads are while the compiled step (CUDA graphs) is fed from the folder (stacks gzipped)
#   4. native stacks (py-spy --native --idle): which CUDA or nvJPEG call the preparing thread waits in while the
#      compiled step runs (SPY_ROW, default jpeg:gpu+compile; SPY_FLAGS; NATIVE_STEPS)
cd "$(dirname "$0")/.."
DEFAULT_PARTS="1 2 3"
. benchmarks/gpu_common.sh
if [ "${SMALL:-0}" = 1 ]; then
  PER=24; VAL=8; B=8; W=2; DEV="--device cpu"; STEPS="--steps 2 --warmup 1"; ARCH=ssdlite320_mobilenet_v3_small
  ROWS="ours jpeg:cpu"; PSTEPS="--steps 2 --profile-steps 1"; SPY_STEPS=4
else
  PER=${PER:-2048}; VAL=64; B=256; W=${W:-14}; DEV=""; STEPS="--steps 60 --warmup 10"
  ARCH=ssdlite320_mobilenet_v3_large
  ROWS=${ROWS:-"ours jpeg:gpu jpeg:cpu"}; PSTEPS="--steps 40 --profile-steps 4"; SPY_STEPS=150
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null | tee -a "$OUT/log.txt"
ls .gpu/whl/*.whl >/dev/null 2>&1 && $PY -m pip install -q --no-deps .gpu/whl/*.whl 2>&1 | tail -1
. benchmarks/gpu_voc_folder.sh

for r in $(seq 1 "${REPEAT:-1}"); do
  want 1 || break
  if [ -n "${BASE_TREE:-}" ]; then
    log "1a. train_speed from $BASE_TREE (before): $ROWS, batch $B, $W workers"
    timeout 200 $PY "$BASE_TREE/benchmarks/train_speed.py" --arch $ARCH --batch-sizes $B $STEPS $DEV --workers $W \
      --data-path "$VOC" --rows $ROWS --json "$OUT/train_speed_before_$r.json" 2>&1 | grep -v Warning \
      | tee -a "$OUT/log.txt"
  fi
  log "1b. train_speed from this tree: $ROWS, batch $B, $W workers"
  timeout 200 $PY benchmarks/train_speed.py --arch $ARCH --batch-sizes $B $STEPS $DEV --workers $W \
    --data-path "$VOC" --rows $ROWS --json "$OUT/train_speed_after_$r.json" 2>&1 | grep -v Warning \
    | tee -a "$OUT/log.txt"
done
want 2 && log "2. input_profile: $ROWS" &&
timeout 200 $PY benchmarks/input_profile.py --arch $ARCH -b $B --workers $W --data-path "$VOC" --rows $ROWS $PSTEPS \
  --out-dir "$OUT/profile" 2>&1 | grep -v "Warning\|USDT\|gpuGetDeviceCount" | tee -a "$OUT/log.txt"
if want 3 && command -v py-spy >/dev/null; then
  SPY_ROW=${SPY_ROW:-$(echo $ROWS | tr ' ' '\n' | grep -m1 '^jpeg:')}
  for mode in ${SPY_MODES:-gil idle}; do
    log "3. py-spy --$mode over train_speed --rows $SPY_ROW --steps $SPY_STEPS ${SPY_FLAGS:-}"
    timeout 200 py-spy record --$mode --threads --nonblocking -r 250 -f raw -o "$OUT/pyspy_$mode.txt" -- \
      $PY benchmarks/train_speed.py --arch $ARCH --batch-sizes $B --steps $SPY_STEPS --warmup 10 $DEV \
      --workers $W --data-path "$VOC" --rows $SPY_ROW ${SPY_FLAGS:-} 2>&1 | grep -v Warning | tail -3 \
      | tee -a "$OUT/log.txt"
    gzip -f "$OUT/pyspy_$mode.txt"
  done
fi
if want 4 && command -v py-spy >/dev/null; then
  SPY_ROW=${SPY_ROW:-jpeg:gpu+compile}
  log "4. py-spy --native --idle over train_speed --rows $SPY_ROW --steps ${NATIVE_STEPS:-400} ${SPY_FLAGS:-}"
  # launched under py-spy: attaching to a running process (--pid) failed where tried ("Failed to find python version")
  timeout 400 py-spy record --native --idle --threads -r 25 -f raw -o "$OUT/pyspy_native.txt" -- \
    $PY benchmarks/train_speed.py --arch $ARCH --batch-sizes $B --steps ${NATIVE_STEPS:-400} --warmup 10 $DEV \
    --workers $W --data-path "$VOC" --rows $SPY_ROW ${SPY_FLAGS:-} 2>&1 | grep -v Warning | tail -3 \
    | tee -a "$OUT/log.txt"
  gzip -f "$OUT/pyspy_native.txt"
fi
log "done"
