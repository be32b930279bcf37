#!/usr/bin/env bash
# Issue 21's models on the GPU machine: SSDLite-Large trained with the recipe of the converged Small
# (MODE=decode benchmarks/cpu_converge.sh: batch 16, lr 0.06, SSD's IoU crop + flip, --decode cpu-v2, seed 0, fp32)
# on the same 768 make_voc photos (runs/decode_map/voc, carried), but LARGE_E epochs (from scratch, Large is still
# far from its plateau at the Small's 12: held-out mAP@.5 0.315 there), then QAT fine-tunes of the Small
# (runs/decode_map/decode_cpu-v2_0/best.pth, carried; QAT_E epochs) and of that Large (QAT_LARGE_E epochs), --qat at
# a tenth of the lr.
# The checkpoints come back as $OUT/<run>.pth (the device returns 8 files at most), logs and curves in logs.tar.gz;
# export --precision int8 and the held-out mAP run on the host (RESULTS.md, "INT8 as a graph").
#   bash benchmarks/gpu_int8.sh     (one H200: about 5 minutes; SMALL=1: a CPU dry run)
#   LARGE_CKPT=runs/int8/large.pth bash benchmarks/gpu_int8.sh     (the QAT fine-tunes only, from that Large)
cd "$(dirname "$0")/.."
. benchmarks/gpu_common.sh
LARGE_E=${LARGE_E:-60}; QAT_E=${QAT_E:-3}; QAT_LARGE_E=${QAT_LARGE_E:-10}; DEV=""; AMP="--no-amp"; VOC=${VOC:-runs/decode_map/voc}
SMALL_CKPT=${SMALL_CKPT:-runs/decode_map/decode_cpu-v2_0/best.pth}
if [ "${SMALL:-0}" = 1 ]; then LARGE_E=1; QAT_E=1; QAT_LARGE_E=1; DEV="--device cpu"; AMP=""; fi
ls .gpu/whl/*.whl >/dev/null 2>&1 && $PY -m pip install -q --no-deps .gpu/whl/*.whl 2>&1 | tail -1
COMMON="--dataset voc --data-path $VOC --train-split train --val-split val -b 16 --bn-momentum 0.1
  --data-augmentation ssdlite --decode cpu-v2 --seed 0 --workers 6 --eval-every 5 --no-progress $AMP $DEV"
run() {  # name, flags...: trains into $OUT/name, its log beside it
  local name=$1; shift
  log "$name: $*"
  timeout 560 $PY -m edgeexport.train $COMMON "$@" --output-dir "$OUT/$name" --force > "$OUT/$name.log" 2>&1
  echo "rc=$? $(tail -1 "$OUT/$name.log")" | tee -a "$OUT/log.txt"
}
LARGE_CKPT=${LARGE_CKPT:-}
if [ -z "$LARGE_CKPT" ]; then
  run large --arch ssdlite320_mobilenet_v3_large --epochs "$LARGE_E" --lr 0.06 --warmup-iters 30 --eval-every 10 &
  LARGE_CKPT=$OUT/large/best.pth
fi
run qat_small --arch ssdlite320_mobilenet_v3_small --qat --resume "$SMALL_CKPT" --epochs "$QAT_E" --lr 0.006 \
  --warmup-iters 0 &
wait
run qat_large --arch ssdlite320_mobilenet_v3_large --qat --resume "$LARGE_CKPT" --epochs "$QAT_LARGE_E" --lr 0.006 \
  --warmup-iters 0
runs=$(cd "$OUT" && ls -d large qat_small qat_large 2>/dev/null)
for d in $runs; do cp "$OUT/$d/best.pth" "$OUT/$d.pth"; done
tar -czf "$OUT/logs.tar.gz" -C "$OUT" $(for d in $runs; do echo "$d.log $d/metrics.json"; done)
for d in $runs; do rm -rf "${OUT:?}/$d" "$OUT/$d.log"; done
ls -la "$OUT" | tee -a "$OUT/log.txt"
