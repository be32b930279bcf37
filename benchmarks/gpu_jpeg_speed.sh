#!/usr/bin/env bash
# Training from a JPEG folder on the GPU machine (issue 20), results under $OUT:
#   a. the input pipelines alone per loader worker (loader_speed.py), then the step against the trainer's own input
#      pipelines from the folder, eager and compiled, side by side in one run (train_speed.py --data-path);
#   b. held-out mAP after the same epochs, --decode cpu-v2 (torchvision's v2 transforms: the reference), cpu and gpu,
#      two seeds each where time allows; each run's epoch images/s;
#   c. the GPU tests of the input paths;
#   d. the trainer under torchrun on 1 and 2 GPUs of one host from the folder, each --decode (GPUS="1 2",
#      DDP_DECODES="cpu gpu"; the host's cores shared out between the processes; epoch images/s in each metrics.json).
#   PARTS="a" / "b" / "c" / "d": one per call (each fits the device tool's 10 minutes); SMALL=1: a CPU dry run;
#   ROWS_ONLY="ours jpeg:cpu jpeg:gpu" NO_COMPILE=1: part a's eager rows alone; ROWS_ONLY="ours+compile
#   jpeg:gpu+compile" NO_COMPILE=1: two compiled rows alone (inductor builds each row's kernels: ~2 min a row);
#   PARTS="a2": part a without the loader rows (a1), so two compiled rows fit one call with the folder's minute;
#   NO_AGREEMENT=1: without ours+compile's second compilation (the compiled-vs-eager comparison);
#   COMPILE_MODE=reduce-overhead: torch.compile's mode for the compiled rows (CUDA graphs);
#   STEP_STREAM=side: part a2's steps on a non-blocking stream of their own (train_speed.py --step-stream);
#   PARTS="r": --crop-on gpu's GPU half alone, the Triton kernel against its torch reference (crop_resize_speed.py);
#   PARTS="o": nvJPEG's decode alone and beside another stream's kernel (nvjpeg_overlap.py; OVERLAP_FLAGS: its flags);
#   W=16: loader workers (default 14); CPU_SHARE=0.3: the jpeg:gpu+cpu rows' share of each batch decoded by the
#   loader workers (--cpu-decode-share);
#   RUNS="cpu:0 cpu+gpucrop:0": part b's runs, decode:seed (+gpucrop: --crop-on gpu);
#   TRAIN_FLAGS="--compile --compile-mode reduce-overhead": more flags for part b's trainer runs;
#   TESTS_K="share": part c's tests whose names match (pytest -k); DECODES="cpu cpu+reduced": part a1's decodes.
# The folder: 8,192 make_voc photos of 480x360 (+256 held out), written by 4 processes and merged (PHOTO="4032 3024":
# of that size; benchmarks/gpu_voc_folder.sh).
cd "$(dirname "$0")/.."
DEFAULT_PARTS="a"
. benchmarks/gpu_common.sh
if [ "${SMALL:-0}" = 1 ]; then
  PER=24; VAL=8; B=8; W=2; DEV="--device cpu"; STEPS="--steps 2 --warmup 1"; EP=2; ARCH=ssdlite320_mobilenet_v3_small
  LB="-b 8 --batches 2"; COMPILE=""; ROWS="ours jpeg:cpu jpeg:cpu-v2"
else
  PER=${PER:-2048}; VAL=64; B=256; W=${W:-14}; DEV=""; STEPS="--steps 30 --warmup 10"; EP=${EPOCHS:-10}
  ARCH=ssdlite320_mobilenet_v3_large; LB="-b 128 --batches 8"; COMPILE="--compile"; ROWS="ours jpeg:cpu jpeg:gpu jpeg:cpu-v2"
fi
ROWS=${ROWS_ONLY:-$ROWS}; [ "${NO_COMPILE:-0}" = 1 ] && COMPILE=""
[ "${NO_AGREEMENT:-0}" = 1 ] && COMPILE="$COMPILE --no-compile-agreement"
[ -n "${COMPILE_MODE:-}" ] && COMPILE="$COMPILE --compile-mode $COMPILE_MODE"
[ -n "${CPU_SHARE:-}" ] && COMPILE="$COMPILE --cpu-decode-share $CPU_SHARE"
[ -n "${STEP_STREAM:-}" ] && COMPILE="$COMPILE --step-stream $STEP_STREAM"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null | tee -a "$OUT/log.txt"
$PY -c "import torch, torchvision, os; print('torch', torch.__version__, 'torchvision', torchvision.__version__, \
'cpus', os.cpu_count())" | tee -a "$OUT/log.txt"
ls .gpu/whl/*.whl >/dev/null 2>&1 && $PY -m pip install -q --no-deps .gpu/whl/*.whl 2>&1 | tail -1
. benchmarks/gpu_voc_folder.sh

if want o; then
  log "o. nvjpeg_overlap: nvJPEG's decode alone and beside a kernel on another stream"
  $PY benchmarks/nvjpeg_overlap.py --data-path "$VOC" ${OVERLAP_FLAGS:-} --json "$OUT/nvjpeg_overlap.json" 2>&1 \
    | tee -a "$OUT/log.txt"
fi
if want r; then
  log "r. crop_resize_speed: decode_batch on --crop-on gpu's batches, the Triton kernel against its reference"
  $PY benchmarks/crop_resize_speed.py --data-path "$VOC" --batch $B --json "$OUT/crop_resize_speed.json" 2>&1 \
    | tee -a "$OUT/log.txt"
fi
if want a || want a1; then
  log "a1. loader_speed: the input pipelines alone, per worker"
  $PY benchmarks/loader_speed.py --data-path "$VOC" ${DECODES:+--decodes $DECODES} --workers 0 $W $LB --stages 512 \
    --json "$OUT/loader_speed.json" 2>&1 | tee -a "$OUT/log.txt"
fi
if want a || want a2; then
  log "a2. train_speed: the step and the trainer's input pipelines from the folder, batch $B, eager and compiled"
  $PY benchmarks/train_speed.py --arch $ARCH --batch-sizes $B $STEPS $DEV --workers $W --data-path "$VOC" \
    --rows $ROWS $COMPILE --json "$OUT/train_speed_jpeg.json" 2>&1 | tee -a "$OUT/log.txt"
fi
if want b; then
  for run in ${RUNS:-cpu-v2:0 cpu:0 gpu:0 cpu-v2:1 cpu:1}; do
    d=${run%%:*}; s=${run##*:}
    [ "${SMALL:-0}" = 1 ] && [ "${d%+gpucrop}" != "$d" -o "$d" = gpu ] && continue
    flags="--decode ${d%+gpucrop}"; [ "${d%+gpucrop}" != "$d" ] && flags="$flags --crop-on gpu"
    log "b. train $flags --seed $s ${TRAIN_FLAGS:-}: $EP epochs, batch $B"
    $PY -m edgeexport.train --dataset voc --data-path "$VOC" --train-split train --val-split val --arch $ARCH \
      --epochs $EP -b $B --workers $W $flags --seed $s --eval-every $EP --no-progress $DEV ${TRAIN_FLAGS:-} \
      --output-dir "/tmp/run_${d}_$s" --force 2>&1 | tee -a "$OUT/log.txt"
    cp "/tmp/run_${d}_$s/metrics.json" "$OUT/metrics_${d}_seed$s.json"
  done
fi
if want d; then
  # item 4: the trainer under torchrun from the folder, 1 then 2 GPUs of one host, each --decode; the host's cores
  # shared out: each process keeps one for itself and one for its batch-preparing thread, the rest are its workers
  NCPU=$($PY -c "import os; print(len(os.sched_getaffinity(0)))")
  for g in ${GPUS:-1 2}; do
    for d in ${DDP_DECODES:-cpu gpu}; do
      [ "${SMALL:-0}" = 1 ] && [ "$d" = gpu ] && continue
      w=$(( NCPU / g - 2 )); [ $w -lt 0 ] && w=0
      log "d. torchrun --nproc_per_node=$g, --decode $d, batch $B per process, $w workers each, $EP epochs"
      $PY -m torch.distributed.run --standalone --nproc_per_node=$g -m edgeexport.train --dataset voc \
        --data-path "$VOC" --train-split train --val-split val --arch $ARCH --epochs $EP -b $B --workers $w \
        --decode $d --eval-every $EP --no-progress $DEV ${TRAIN_FLAGS:-} --output-dir "/tmp/ddp_${d}_$g" --force \
        2>&1 | tee -a "$OUT/log.txt"
      cp "/tmp/ddp_${d}_$g/metrics.json" "$OUT/ddp_metrics_${d}_${g}gpu.json"
    done
  done
fi
if want c; then
  log "c. GPU tests of the input paths"
  $PY -m pytest -q -p no:cacheprovider tests/train/test_gpu_input.py tests/train/test_decoded_crops.py \
    tests/train/test_triton_crops.py -m "gpu or not gpu" \
    ${TESTS_K:+-k "$TESTS_K"} 2>&1 | tee "$OUT/gpu_input_tests.txt" | tail -15 | tee -a "$OUT/log.txt"
fi
log "done"
