#!/usr/bin/env bash
# Accuracy where it counts, on the GPU machine (results under $OUT), in two calls:
#   bash benchmarks/gpu_accuracy.sh train   -- SSDLite-Small trained on the synthetic shapes and on a VOC set of
#       them on natural photographs (edgeexport.data.make_voc), each with torchvision's and nvinfer's
#       preprocessing (--preprocess nvinfer); the synthetic recipe once more with torchvision's own per-image loss
#       (--loss torchvision), to compare the held-out curves before and after the batched loss. Two lanes, one
#       per GPU.
#   bash benchmarks/gpu_accuracy.sh evaluate -- each model exported, and evaluate's rows pytorch, onnxruntime,
#       nvinfer and fp16 (the folded graph in fp16 on the GPU through nvinfer's path) on its held-out set.
#   SMALL=1: a quick CPU dry run. On a CPU, with the checkpoints brought back from the GPU machine:
#     RUNS=<folder of syn_*/ voc_*/best.pth> NV=300 NVAL=300 ROWS="pytorch onnxruntime nvinfer" \
#       bash benchmarks/gpu_accuracy.sh evaluate
cd "$(dirname "$0")/.."
. benchmarks/gpu_common.sh
RUNS=${RUNS:-/tmp/acc}
mkdir -p "$OUT" "$RUNS"
if [ "${SMALL:-0}" = 1 ]; then
  E=1; NS=64; NV=16; NTRAIN=32; NVAL=8; B=8; W=0; DEV="--device cpu"; EV=1
else
  E=${E:-20}; NS=${NS:-4096}; NV=${NV:-500}; NTRAIN=${NTRAIN:-4000}; NVAL=${NVAL:-500}; B=64; W=7; DEV=""; EV=5
fi
train() {  # name, gpu, extra args...
  local name=$1 gpu=$2; shift 2
  CUDA_VISIBLE_DEVICES=$gpu $PY -m edgeexport.train --arch ssdlite320_mobilenet_v3_small --epochs $E -b $B \
    --lr 0.1 --warmup-iters 100 --bn-momentum 0.1 --data-augmentation ssdlite --workers $W --eval-every $EV \
    --no-progress --output-dir "$RUNS/$name" --force $DEV "$@" > "$RUNS/$name.log" 2>&1
  echo "$name: $(tail -1 "$RUNS/$name.log")"
}
SYN="--dataset synthetic --synthetic-train-size $NS --synthetic-val-size $NV"
VOC="--dataset voc --data-path $RUNS/voc --train-split train --val-split val"
if [ "${1:-}" = train ]; then
  $PY -m edgeexport.data.make_voc "$RUNS/voc" --train $NTRAIN --val $NVAL --size 480 360
  DECODE=""; [ -z "$DEV" ] && DECODE="--decode gpu"
  ( train syn_torchvision 0 $SYN; train syn_nvinfer 0 $SYN --preprocess nvinfer
    train voc_nvinfer 0 $VOC --preprocess nvinfer ) &
  ( train syn_reference_loss 1 $SYN --loss torchvision; train voc_torchvision 1 $VOC $DECODE ) &
  wait
  for r in syn_torchvision syn_nvinfer syn_reference_loss voc_torchvision voc_nvinfer; do
    cp "$RUNS/$r/metrics.json" "$OUT/${r}_metrics.json"; cp "$RUNS/$r.log" "$OUT/${r}.log"
  done
  tar -cf "$OUT/checkpoints_a.tar" -C "$RUNS" syn_torchvision/best.pth syn_nvinfer/best.pth
  tar -cf "$OUT/checkpoints_b.tar" -C "$RUNS" voc_torchvision/best.pth voc_nvinfer/best.pth
  (cd "$OUT" && tar -cf logs.tar ./*_metrics.json ./*.log && rm -f ./*_metrics.json ./*.log)
elif [ "${1:-}" = evaluate ]; then
  # ROWS="pytorch onnxruntime nvinfer" evaluates checkpoints brought back from the GPU machine on a CPU
  DEFAULT_ROWS="pytorch onnxruntime nvinfer"; [ -z "$DEV" ] && DEFAULT_ROWS="$DEFAULT_ROWS fp16"
  ROWS=${ROWS:-$DEFAULT_ROWS}
  # the val split depends only on the seed and the image's index, so a missing VOC set is rebuilt identically
  [ -d "$RUNS/voc" ] || $PY -m edgeexport.data.make_voc "$RUNS/voc" --train 1 --val $NVAL --size 480 360
  for r in syn_torchvision syn_nvinfer voc_torchvision voc_nvinfer; do
    $PY export.py --model-path "$RUNS/$r/best.pth" --output-dir "$RUNS/$r/bundle" --force --no-simplify \
      > "$RUNS/$r.export.log" 2>&1 || { tail -3 "$RUNS/$r.export.log"; continue; }
    case $r in syn_*) DATA="--dataset synthetic --synthetic-size $NV --seed 2";;
               *) DATA="--dataset voc --data-path $RUNS/voc --split val";; esac
    $PY -m edgeexport.evaluate "$RUNS/$r/bundle" --model-path "$RUNS/$r/best.pth" --backend $ROWS $DATA \
      --no-progress --json "$OUT/eval_$r.json" 2>&1 | tee "$OUT/eval_$r.txt"
  done
  (cd "$OUT" && tar -cf evaluations.tar eval_* && rm -f eval_*)
fi
