#!/usr/bin/env bash
# Is --decode cpu's held-out mAP below --decode cpu-v2's (torchvision's v2 transforms), or was the gap CPU2 measured
# on two seeds chance? MODE=decode benchmarks/cpu_converge.sh's recipe (SSDLite-Small, 12 epochs, batch 16, lr 0.06,
# SSD's IoU crop + flip, 768 make_voc photos of 480x360, 300 held out) in fp32 on the GPU machine, SEEDS seeds per
# path, every run at once (one thread, decoding in the training process). Results: $OUT/decode_map.json and a
# table: per seed, per path, and the paired difference with its spread.
#   bash benchmarks/gpu_decode_map.sh          (SEEDS=8 E=12 on one H200: about 5 min; SMALL=1: a CPU dry run)
cd "$(dirname "$0")/.."
. benchmarks/gpu_common.sh
SEEDS=${SEEDS:-8}; E=${E:-12}; TRAIN=768; VAL=300; DEV=""; AMP="--no-amp"
if [ "${SMALL:-0}" = 1 ]; then SEEDS=2; E=1; TRAIN=16; VAL=8; DEV="--device cpu"; AMP=""; fi
ls .gpu/whl/*.whl >/dev/null 2>&1 && $PY -m pip install -q --no-deps .gpu/whl/*.whl 2>&1 | tail -1
VOC=${VOC:-/tmp/voc_decode_$TRAIN}
[ -f "$VOC/ImageSets/Main/train.txt" ] || $PY -m edgeexport.data.make_voc "$VOC" --train $TRAIN --val $VAL \
  --size 480 360 > /dev/null
log "$SEEDS seeds x (cpu, cpu-v2), $E epochs, $TRAIN photos, $VAL held out"
for s in $(seq 0 $((SEEDS - 1))); do
  for d in cpu cpu-v2; do
    timeout 540 $PY -m edgeexport.train --dataset voc --data-path "$VOC" --train-split train --val-split val \
      --arch ssdlite320_mobilenet_v3_small --epochs "$E" -b 16 --lr 0.06 --warmup-iters 30 --bn-momentum 0.1 \
      --data-augmentation ssdlite --decode $d --seed $s --workers 0 --threads 1 --eval-every 5 $AMP $DEV \
      --no-progress --output-dir "/tmp/decode_map/${d}_$s" --force > "$OUT/decode_${d}_$s.log" 2>&1 &
  done
done
wait
$PY - "$OUT" "$SEEDS" <<'PYEOF'
import json, math, os, sys
out, seeds = sys.argv[1], int(sys.argv[2])
runs = {}
for d in ("cpu", "cpu-v2"):
    for s in range(seeds):
        path = os.path.join("/tmp/decode_map", "{}_{}".format(d, s), "metrics.json")
        if os.path.exists(path):
            last = json.load(open(path))[-1]
            runs["{} {}".format(d, s)] = {"map": last["map"], "map50": last["map50"], "train_loss": last["train_loss"]}
pairs = [(runs["cpu {}".format(s)]["map"], runs["cpu-v2 {}".format(s)]["map"]) for s in range(seeds)
         if "cpu {}".format(s) in runs and "cpu-v2 {}".format(s) in runs]
def stats(xs):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")
    return m, sd
summary = {}
if pairs:
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    diff = [x - y for x, y in pairs]
    (ma, sa), (mb, sb), (md, sd) = stats(a), stats(b), stats(diff)
    summary = {"seeds": len(pairs), "cpu_mean": ma, "cpu_sd": sa, "cpu_v2_mean": mb, "cpu_v2_sd": sb,
               "paired_diff_mean": md, "paired_diff_sd": sd,
               "paired_t": md / (sd / math.sqrt(len(diff))) if len(diff) > 1 and sd > 0 else None,
               "cpu_below_in": sum(x < y for x, y in pairs)}
json.dump({"command": "bash benchmarks/gpu_decode_map.sh", "runs": runs, "summary": summary},
          open(os.path.join(out, "decode_map.json"), "w"), indent=1)
for k in sorted(runs):
    print("{:<10} mAP@[.5:.95] {:.4f}  mAP@.5 {:.4f}  loss {:.3f}".format(k, runs[k]["map"], runs[k]["map50"],
                                                                        runs[k]["train_loss"]))
print(json.dumps(summary, indent=1))
PYEOF
