#!/usr/bin/env bash
# Do the three input paths train to the same held-out mAP? --decode cpu-v2 (torchvision's v2 transforms: the
# reference), cpu and gpu, SEEDS seeds each, the same recipe: SSDLite-Small, E epochs, batch 16, SSD's IoU crop +
# flip, 768 make_voc photos of 480x360, 300 held out, fp32, every run at once (one thread each, decoding in the
# training process). LR / WARMUP: the recipe's step size (0.06 / 30 was cpu_converge.sh's, and a third of its runs
# stalled: results/h200_decode_map.txt). Results: $OUT/decode_map.json and a table: per seed and path, each path's
# mean and spread, and its paired difference from cpu-v2 with the spread of that difference. PATHS="cpu cpu+gpucrop":
# --decode cpu against --decode cpu --crop-on gpu (the crops resized on the GPU), cpu the reference then.
#   bash benchmarks/gpu_decode_map.sh      (SEEDS=8 E=12, 24 runs on one H200: about 7 min; SMALL=1: CPU dry run)
cd "$(dirname "$0")/.."
. benchmarks/gpu_common.sh
SEEDS=${SEEDS:-8}; E=${E:-12}; LR=${LR:-0.03}; WARMUP=${WARMUP:-100}; PATHS=${PATHS:-"cpu-v2 cpu gpu"}
TRAIN=768; VAL=300; DEV=""; AMP="--no-amp"
if [ "${SMALL:-0}" = 1 ]; then SEEDS=2; E=1; TRAIN=16; VAL=8; DEV="--device cpu"; AMP=""; PATHS="cpu-v2 cpu"; fi
ls .gpu/whl/*.whl >/dev/null 2>&1 && $PY -m pip install -q --no-deps .gpu/whl/*.whl 2>&1 | tail -1
VOC=${VOC:-/tmp/voc_decode_$TRAIN}
[ -f "$VOC/ImageSets/Main/train.txt" ] || $PY -m edgeexport.data.make_voc "$VOC" --train $TRAIN --val $VAL \
  --size 480 360 > /dev/null
log "$SEEDS seeds x ($PATHS), $E epochs, lr $LR, warm-up $WARMUP steps, $TRAIN photos, $VAL held out"
for s in $(seq 0 $((SEEDS - 1))); do
  for d in $PATHS; do
    timeout 580 $PY -m edgeexport.train --dataset voc --data-path "$VOC" --train-split train --val-split val \
      --arch ssdlite320_mobilenet_v3_small --epochs "$E" -b 16 --lr "$LR" --warmup-iters "$WARMUP" \
      --bn-momentum 0.1 --data-augmentation ssdlite --decode ${d%+gpucrop} $([ "${d%+gpucrop}" != "$d" ] && echo \
      --crop-on gpu) --seed $s --workers 0 --threads 1 \
      --eval-every "$E" $AMP $DEV --no-progress --output-dir "/tmp/decode_map/${d}_$s" --force \
      > "$OUT/decode_${d/+/_}_$s.log" 2>&1 &
  done
done
wait
$PY - "$OUT" "$SEEDS" "$PATHS" "$E" "$LR" "$WARMUP" <<'PYEOF'
import json, math, os, sys
out, seeds, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
runs = {}
for d in paths:
    for s in range(seeds):
        path = os.path.join("/tmp/decode_map", "{}_{}".format(d, s), "metrics.json")
        if os.path.exists(path):
            last = json.load(open(path))[-1]
            runs["{} {}".format(d, s)] = {"map": last["map"], "map50": last["map50"], "train_loss": last["train_loss"]}

def stats(xs):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")
    return m, sd

summary = {}
for d in paths:
    xs = [runs["{} {}".format(d, s)]["map"] for s in range(seeds) if "{} {}".format(d, s) in runs]
    if not xs:
        continue
    m, sd = stats(xs)
    row = {"runs": len(xs), "mean": m, "sd": sd}
    ref = paths[0]
    pairs = [(runs["{} {}".format(d, s)]["map"], runs["{} {}".format(ref, s)]["map"]) for s in range(seeds)
             if "{} {}".format(d, s) in runs and "{} {}".format(ref, s) in runs]
    if d != ref and len(pairs) > 1:
        diff = [a - b for a, b in pairs]
        md, dsd = stats(diff)
        row.update({"paired_diff_vs_" + ref: md, "paired_diff_sd": dsd,
                    "paired_diff_se": dsd / math.sqrt(len(diff)), "below_" + ref + "_in": sum(x < 0 for x in diff)})
    summary[d] = row
json.dump({"command": "bash benchmarks/gpu_decode_map.sh", "epochs": int(sys.argv[4]), "lr": float(sys.argv[5]),
           "warmup_iters": int(sys.argv[6]), "runs": runs, "summary": summary},
          open(os.path.join(out, "decode_map.json"), "w"), indent=1)
for k in sorted(runs):
    print("{:<10} mAP@[.5:.95] {:.4f}  mAP@.5 {:.4f}  loss {:.3f}".format(k, runs[k]["map"], runs[k]["map50"],
                                                                        runs[k]["train_loss"]))
for d, row in summary.items():
    extra = ""
    if "paired_diff_sd" in row:
        extra = "  paired diff vs {} {:+.4f} (sd {:.4f}, se {:.4f})".format(paths[0], row["paired_diff_vs_" + paths[0]],
                                                                          row["paired_diff_sd"], row["paired_diff_se"])
    print("{:<8} {} runs  mean {:.4f}  sd {:.4f}{}".format(d, row["runs"], row["mean"], row["sd"], extra))
PYEOF
