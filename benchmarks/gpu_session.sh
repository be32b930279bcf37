#!/usr/bin/env bash
# Everything this project measures on a GPU, in one run (the device tool's H100; results under $OUT).
#   1. training throughput (AMP, channels-last, batch 64) of SSDLite-Large and -Small on synthetic data;
#   2. fp16 numerics of the folded graph vs the fp32 original (TF32 off);
#   3. PyTorch GPU baselines: eager, deploy fp32/fp16, CUDA graphs, torch.compile at batch 1 and 64.
cd "$(dirname "$0")/.."
. benchmarks/gpu_common.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$OUT/log.txt"
$PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)" | tee -a "$OUT/log.txt"
log "1a. train SSDLite-Large, AMP, batch 64, 6 epochs x 4096 synthetic images"
$PY -m edgeexport.train --dataset synthetic --arch ssdlite320_mobilenet_v3_large --synthetic-image-size 320 320 \
  --synthetic-train-size 4096 --synthetic-val-size 256 --epochs ${LARGE_EPOCHS:-6} -b 64 --lr 0.1 --warmup-iters 50 \
  --bn-momentum 0.1 --data-augmentation hflip --workers 14 --amp --channels-last --no-progress \
  --output-dir /tmp/large --force 2>&1 | tee -a "$OUT/log.txt"
cp /tmp/large/metrics.json "$OUT/train_large_metrics.json"; cp /tmp/large/best.pth "$OUT/large_best.pth"
log "1b. train SSDLite-Small, AMP, batch 64, 2 epochs"
$PY -m edgeexport.train --dataset synthetic --arch ssdlite320_mobilenet_v3_small --synthetic-image-size 320 320 \
  --synthetic-train-size 4096 --synthetic-val-size 256 --epochs 2 -b 64 --lr 0.1 --warmup-iters 50 \
  --bn-momentum 0.1 --data-augmentation hflip --workers 14 --amp --channels-last --no-progress \
  --output-dir /tmp/small --force 2>&1 | tee -a "$OUT/log.txt"
cp /tmp/small/metrics.json "$OUT/train_small_metrics.json"
log "2. fp16 numerics"
models=(/tmp/large/best.pth)
[ -f "${DEMO_CKPT:-runs/demo/train/best.pth}" ] && models+=("${DEMO_CKPT:-runs/demo/train/best.pth}")
$PY benchmarks/fp16_numerics.py --model-path "${models[@]}" --device cuda --json "$OUT/fp16_numerics.json" 2>&1 | tee -a "$OUT/log.txt"
log "3. PyTorch GPU baselines"
$PY benchmarks/host_fps.py --model-path /tmp/large/best.pth --device cuda --batch-sizes 1 64 --iters 50 \
  --json "$OUT/gpu_fps.json" 2>&1 | tee -a "$OUT/log.txt"
log "done"
