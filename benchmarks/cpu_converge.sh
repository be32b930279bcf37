#!/usr/bin/env bash
# Accuracy of trained-to-a-plateau models, backend by backend, on this project's 2-core CPU machine (no GPU needed):
# SSDLite-Small trained 25 epochs (cosine schedule to zero) on the synthetic shapes (random sizes 256-480) and on
# the shapes-on-photographs VOC set (edgeexport.data.make_voc, 480x360), each with torchvision's preprocessing and
# with --preprocess nvinfer; two runs at a time, one thread each. Then each exported and evaluated (pytorch,
# onnxruntime, nvinfer rows) on its 300 held-out images. Results: benchmarks/results/cpu2_converge.json.
#   bash benchmarks/cpu_converge.sh            (about 35 min on 2 cores; E=2 for a quick dry run)
# MODE=decode: instead, the same VOC recipe with SSD's IoU crop + flip (--data-augmentation ssdlite) through
# --decode cpu and --decode cpu-v2 (torchvision's v2 transforms), seeds 0 and 1 each: held-out mAP per path and
# seed, so the difference between paths stands beside the spread between seeds. Results:
# benchmarks/results/cpu2_decode_map.json (E=12: about 35 min).
# MODE=scale: the decode recipe at the step size that does not stall (lr 0.03, 100 warm-up steps: RESULTS.md,
# "second pass"), on make_voc photos of 2048x1536, through --decode cpu with --decode-scale full and reduced, seeds
# 0-3 (SEEDS=...): a seed draws the same crops and flips on both, so each seed is a pair. Results:
# benchmarks/results/cpu2_decode_scale_map.json, every pair under $R with the paired mean difference and its 95 %
# interval, so SEEDS='6 7' adds two pairs to the earlier ones (E=12: about 45 min for four seeds).
set -uo pipefail
cd "$(dirname "$0")/.."
R=${R:-runs/converge}
PY=${PY:-.venv/bin/python}
E=${E:-25}
mkdir -p "$R"
train() {  # name, dataset args... (a later --data-augmentation overrides hflip)
  local name=$1; shift
  $PY -m edgeexport.train --arch ssdlite320_mobilenet_v3_small --epochs "$E" -b 16 --lr 0.06 \
    --warmup-iters 30 --bn-momentum 0.1 --data-augmentation hflip --workers 0 --threads 1 --eval-every 5 \
    --no-progress --output-dir "$R/$name" --force "$@" > "$R/$name.log" 2>&1
  echo "$name: $(tail -1 "$R/$name.log")"
}
SYN="--dataset synthetic --num-classes 3 --synthetic-train-size 768 --synthetic-val-size 300"
VOC="--dataset voc --data-path $R/voc --train-split train --val-split val"
[ "${MODE:-models}" = scale ] || [ -d "$R/voc" ] ||
  $PY -m edgeexport.data.make_voc "$R/voc" --train 768 --val 300 --size 480 360
summarise() {  # json name, command, run names...: held-out mAP of each run's last epoch
  $PY - "$R" "$@" <<'EOF'
import json, os, sys
R, name, command, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
out = {"command": command, "runs": {}}
for run in runs:
    curve = json.load(open(os.path.join(R, run, "metrics.json")))
    out["runs"][run] = {"map": curve[-1]["map"], "map50": curve[-1]["map50"], "train_loss": curve[-1]["train_loss"],
                        "images_per_s": [e["images_per_s"] for e in curve]}
for k, v in out["runs"].items():
    print("{:<20} mAP@[.5:.95] {:.4f}  mAP@.5 {:.4f}  {:.1f} img/s (median epoch)".format(
        k, v["map"], v["map50"], sorted(v["images_per_s"])[len(v["images_per_s"]) // 2]))
with open(os.path.join("benchmarks", "results", name), "w") as f:
    json.dump(out, f, indent=1)
EOF
}
if [ "${MODE:-models}" = decode ]; then
  for s in 0 1; do
    train "decode_cpu_$s" $VOC --data-augmentation ssdlite --decode cpu --seed $s &
    train "decode_cpu-v2_$s" $VOC --data-augmentation ssdlite --decode cpu-v2 --seed $s & wait
  done
  summarise cpu2_decode_map.json "MODE=decode bash benchmarks/cpu_converge.sh" decode_cpu_0 decode_cpu-v2_0 \
    decode_cpu_1 decode_cpu-v2_1
  exit 0
fi
if [ "${MODE:-models}" = scale ]; then
  [ -d "$R/voc_big" ] || $PY -m edgeexport.data.make_voc "$R/voc_big" --train 768 --val 300 --size 2048 1536
  BIG="--dataset voc --data-path $R/voc_big --train-split train --val-split val --data-augmentation ssdlite
       --lr 0.03 --warmup-iters 100"
  for s in ${SEEDS:-0 1 2 3}; do
    train "scale_full_$s" $BIG --decode-scale full --seed $s &
    train "scale_reduced_$s" $BIG --decode-scale reduced --seed $s & wait
  done
  # every pair under $R, not only this call's seeds: SEEDS='6 7' adds pairs to the file
  names=$(cd "$R" && ls -d scale_full_* | grep -v '\.log$' | sed 's/^scale_full_//' | sort -n |
          while read s; do [ -f "scale_reduced_$s/metrics.json" ] && echo "scale_full_$s scale_reduced_$s"; done)
  summarise cpu2_decode_scale_map.json "MODE=scale bash benchmarks/cpu_converge.sh (SEEDS=... adds pairs)" $names
  $PY - benchmarks/results/cpu2_decode_scale_map.json <<'EOF'
import json, statistics, sys
# two-sided 95 % quantiles of Student's t for 1-30 degrees of freedom (scipy is not a dependency)
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
path = sys.argv[1]
d = json.load(open(path))
seeds = sorted(int(k.rsplit("_", 1)[1]) for k in d["runs"] if k.startswith("scale_full_"))
full = [d["runs"]["scale_full_%d" % s]["map"] for s in seeds]
reduced = [d["runs"]["scale_reduced_%d" % s]["map"] for s in seeds]
diff = [r - f for f, r in zip(full, reduced)]
mean, sd = statistics.mean(diff), statistics.stdev(diff)
half = T975[len(diff) - 2] * sd / len(diff) ** 0.5
d["paired"] = {"seeds": seeds, "reduced_minus_full_map": diff, "mean": mean, "sd": sd,
               "ci95": [mean - half, mean + half], "degrees_of_freedom": len(diff) - 1,
               "full_mean_sd": [statistics.mean(full), statistics.stdev(full)],
               "reduced_mean_sd": [statistics.mean(reduced), statistics.stdev(reduced)]}
json.dump(d, open(path, "w"), indent=1)
print("reduced - full, %d paired seeds: %+.4f +- %.4f (95 %% interval %+.4f..%+.4f)" % (
    len(diff), mean, sd, mean - half, mean + half))
EOF
  exit 0
fi
train syn_torchvision $SYN & train syn_nvinfer $SYN --preprocess nvinfer & wait
train voc_torchvision $VOC & train voc_nvinfer $VOC --preprocess nvinfer & wait
for r in syn_torchvision syn_nvinfer voc_torchvision voc_nvinfer; do
  $PY export.py --model-path "$R/$r/best.pth" --output-dir "$R/$r/bundle" --force > "$R/$r.export.log" 2>&1 ||
    { tail -3 "$R/$r.export.log"; continue; }
  case $r in syn_*) DATA="--dataset synthetic --synthetic-size 300 --seed 2";;  # the trainer's held-out split
             *) DATA="--dataset voc --data-path $R/voc --split val";; esac
  $PY -m edgeexport.evaluate "$R/$r/bundle" --model-path "$R/$r/best.pth" --backend pytorch onnxruntime nvinfer \
    $DATA --no-progress --json "$R/eval_$r.json"
done
$PY - "$R" <<'EOF'
import json, os, sys
R = sys.argv[1]
out = {"command": "bash benchmarks/cpu_converge.sh", "runs": {}}
for r in ("syn_torchvision", "syn_nvinfer", "voc_torchvision", "voc_nvinfer"):
    curve = json.load(open(os.path.join(R, r, "metrics.json")))
    rows = json.load(open(os.path.join(R, "eval_" + r + ".json")))["rows"] if os.path.exists(
        os.path.join(R, "eval_" + r + ".json")) else []
    out["runs"][r] = {"curve": [{k: e.get(k) for k in ("epoch", "train_loss", "images_per_s", "map", "map50")}
                                for e in curve],
                      "rows": [{k: row[k] for k in ("backend", "map", "map50", "delta_map", "detections_per_image")}
                               for row in rows]}
os.makedirs("benchmarks/results", exist_ok=True)
with open("benchmarks/results/cpu2_converge.json", "w") as f:
    json.dump(out, f, indent=1)
print("benchmarks/results/cpu2_converge.json")
EOF
