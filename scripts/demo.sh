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
echo "== 1/3 train SSDLite320-MobileNetV3-Small on synthetic shapes ($EPOCHS epochs, ~4 min on an idle 2-core CPU)"
load_before=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "")
start=$(date +%s)
$PY -m edgeexport.train --dataset synthetic --num-classes 3 --arch ssdlite320_mobilenet_v3_small \
  --synthetic-train-size 768 --synthetic-val-size 200 --synthetic-image-size 320 320 \
  --epochs "$EPOCHS" -b 16 --lr 0.06 --warmup-iters 30 --bn-momentum 0.1 --data-augmentation hflip \
  --workers 0 --output-dir "$OUT/train" --force
train_s=$(( $(date +%s) - start ))
echo "   training took $train_s s"
echo "== 2/3 generate a clip, export the DeepStream bundle (fold, ONNX opset 13, parity)"
start=$(date +%s)
$PY -m edgeexport.emulate.make_clip "$OUT/clip.mp4" --seconds 6 --classes circle square triangle
$PY export.py --model-path "$OUT/train/best.pth" --output-dir "$OUT/bundle" --force --video "$OUT/clip.mp4"
export_s=$(( $(date +%s) - start ))
echo "== 3/3 emulate the DeepStream pipeline on the host (nvinfer preprocessing, C++ parser, clustering)"
start=$(date +%s)
$PY -m edgeexport.emulate "$OUT/bundle" --input "$OUT/clip.mp4" --out "$OUT/annotated.mp4" \
  --json "$OUT/detections.json"
emulate_s=$(( $(date +%s) - start ))
# what this run measured, for the README's numbers (scripts/check_demo.py compares a run with the recorded one)
$PY - "$OUT" "$train_s" "$export_s" "$emulate_s" "$load_before" <<'PYEOF'
import json, os, sys
out, train_s, export_s, emulate_s, load = sys.argv[1:6]
last = json.load(open(os.path.join(out, "train", "metrics.json")))[-1]
summary = json.load(open(os.path.join(out, "detections.json")))["summary"]
record = {"machine": {"cpus": os.cpu_count(), "load_1min_before": float(load) if load else None},
          "train_seconds": int(train_s), "export_seconds": int(export_s), "emulate_seconds": int(emulate_s),
          "epochs": last["epoch"] + 1, "held_out_map": last["map"], "held_out_map50": last["map50"],
          "emulated_frames": summary["frames"], "emulated_detections": summary["detections"]}
tmp = os.path.join(out, ".demo.json.tmp")
with open(tmp, "w") as f:
    json.dump(record, f, indent=1)
os.replace(tmp, os.path.join(out, "demo.json"))
PYEOF
echo
echo "checkpoint : $OUT/train/best.pth   (curves: $OUT/train/curves.png, metrics: $OUT/train/metrics.json)"
echo "bundle     : $OUT/bundle           (copy this folder to the Jetson; see its README.md)"
echo "annotated  : $OUT/annotated.mp4   (detections: $OUT/detections.json)"
echo "this run   : $OUT/demo.json        (times and held-out mAP; the README's come from benchmarks/results/cpu2_demo.json)"
