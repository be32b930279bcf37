#!/usr/bin/env bash
# Training speed on the GPU machine, in one call (results under $OUT):
#   1. benchmarks/train_speed.py: the trainer's step vs a torchvision-reference-style step vs the network alone,
#      SSDLite-Large at batch 64, 128, 256 (and the trainer's loader feeding the step); SSDLite-Small at 256;
#      torch.compile at 256;
#   2. DDP scaling: the trainer itself on 1 and 2 GPUs (torchrun), batch 256 per GPU, synthetic data.
#   bash benchmarks/gpu_train_speed.sh            (SMALL=1: a quick CPU dry run of the same commands)
#   PARTS="1a 1b" / PARTS="1c 2": a subset, where one call's time limit can't hold all four parts
cd "$(dirname "$0")/.."
DEFAULT_PARTS="1a 1b 1c 2"
. benchmarks/gpu_common.sh
if [ "${SMALL:-0}" = 1 ]; then
  BS="4"; STEPS="--steps 2 --warmup 1"; DEV="--device cpu"; N=64; B=8; GPUS="1 2"; W=0
else
  BS="64 128 256"; STEPS="--steps 20 --warmup 5"; DEV=""; N=${N:-16384}; B=256; GPUS="1 2"; W=7
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null | tee -a "$OUT/log.txt"
$PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)" \
  | tee -a "$OUT/log.txt"
want 1a && log "1a. train_speed, SSDLite-Large" &&
$PY benchmarks/train_speed.py --arch ssdlite320_mobilenet_v3_large --batch-sizes $BS $STEPS $DEV --workers 14 \
  --json "$OUT/train_speed_large.json" 2>&1 | tee -a "$OUT/log.txt"
want 1b && log "1b. train_speed, SSDLite-Small" &&
$PY benchmarks/train_speed.py --arch ssdlite320_mobilenet_v3_small --batch-sizes ${BS##* } $STEPS $DEV \
  --rows reference ours network --json "$OUT/train_speed_small.json" 2>&1 | tee -a "$OUT/log.txt"
want 1c && log "1c. train_speed, SSDLite-Large with torch.compile" &&
$PY benchmarks/train_speed.py --arch ssdlite320_mobilenet_v3_large --batch-sizes ${BS##* } $STEPS $DEV --rows ours \
  --compile --json "$OUT/train_speed_compile.json" 2>&1 | tee -a "$OUT/log.txt"
want 2 && for g in $GPUS; do
  log "2. DDP: the trainer on $g process(es), batch $B each"
  $PY -m torch.distributed.run --standalone --nproc_per_node=$g -m edgeexport.train --dataset synthetic \
    --arch ssdlite320_mobilenet_v3_large --synthetic-image-size 320 320 --synthetic-train-size $N \
    --synthetic-val-size 64 --epochs 2 -b $B --lr 0.1 --warmup-iters 20 --bn-momentum 0.1 \
    --data-augmentation hflip --workers $W --no-progress --output-dir "/tmp/ddp$g" --force $DEV 2>&1 | tee -a "$OUT/log.txt"
  cp "/tmp/ddp$g/metrics.json" "$OUT/ddp${g}_metrics.json"
done
log "done"
