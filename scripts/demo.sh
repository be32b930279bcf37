#!/usr/bin/env bash
# The README's main command: on a fresh machine, with no data and no download, train SSDLite-Small on the
# synthetic shapes, export the DeepStream bundle with parity checks, and run the host emulation of the
# DeepStream pipeline on a generated clip. Everything lands in runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
OUT=${OUT_DIR:-runs/demo}
EPOCHS=${DEMO_EPOCHS:-8}
mkdir -p "$OUT"
echo "== 1/3 train SSDLite320-MobileNetV3-Small on synthetic shapes ($EPOCHS epochs, ~2.5 min on a 2-core CPU)"
start=$(date +%s)
$PY -m edgeexport.train --dataset synthetic --num-classes 3 --arch ssdlite320_mobilenet_v3_small \
  --synthetic-train-size 768 --synthetic-val-size 200 --synthetic-image-size 320 320 \
  --epochs "$EPOCHS" -b 16 --lr 0.06 --warmup-iters 30 --bn-momentum 0.1 --data-augmentation hflip \
  --workers 0 --output-dir "$OUT/train"
echo "   training took $(( $(date +%s) - start )) s"
echo "== 2/3 generate a clip, export the DeepStream bundle (fold, ONNX opset 13, parity)"
$PY -m edgeexport.emulate.make_clip "$OUT/clip.mp4" --seconds 6 --classes circle square triangle
$PY export.py --model-path "$OUT/train/best.pth" --output-dir "$OUT/bundle" --force --video "$OUT/clip.mp4"
echo "== 3/3 emulate the DeepStream pipeline on the host (nvinfer preprocessing, C++ parser, clustering)"
$PY -m edgeexport.emulate "$OUT/bundle" --input "$OUT/clip.mp4" --out "$OUT/annotated.mp4" \
  --json "$OUT/detections.json"
echo
echo "checkpoint : $OUT/train/best.pth   (curves: $OUT/train/curves.png, metrics: $OUT/train/metrics.json)"
echo "bundle     : $OUT/bundle           (copy this folder to the Jetson; see its README.md)"
echo "annotated  : $OUT/annotated.mp4   (detections: $OUT/detections.json)"
