# Sourced by benchmarks/gpu_*.sh after gpu_common.sh: the JPEG folder the GPU benchmarks train from, at $VOC
# (default /tmp/voc_jpeg): 4 x PER train + 4 x VAL held-out make_voc photos of 480x360, written by 4 processes
# and merged (8,192 + 256 with the default PER=2048 VAL=64: about a minute on 16 cores). PHOTO="4032 3024": photos
# of that size instead (a phone's: --decode-scale reduced's case), in /tmp/voc_jpeg_4032x3024.
PHOTO=${PHOTO:-480 360}
if [ "$PHOTO" = "480 360" ]; then VOC=${VOC:-/tmp/voc_jpeg}; else VOC=${VOC:-/tmp/voc_jpeg_${PHOTO/ /x}}; fi
if [ ! -f "$VOC/ImageSets/Main/train.txt" ]; then
  log "the folder: 4 x ${PER:=2048} train + 4 x ${VAL:=64} val make_voc photos, ${PHOTO/ /x}"
  t0=$(date +%s)
  for k in 0 1 2 3; do
    $PY -m edgeexport.data.make_voc "$VOC.part$k" --train "$PER" --val "$VAL" --seed $k --size $PHOTO >/dev/null &
  done
  wait
  mkdir -p "$VOC/JPEGImages" "$VOC/Annotations" "$VOC/ImageSets/Main"
  for k in 0 1 2 3; do
    for f in "$VOC.part$k"/JPEGImages/*.jpg; do b=$(basename "$f" .jpg); mv "$f" "$VOC/JPEGImages/p${k}_$b.jpg"; done
    for f in "$VOC.part$k"/Annotations/*.xml; do b=$(basename "$f" .xml); mv "$f" "$VOC/Annotations/p${k}_$b.xml"; done
    for s in train val; do sed "s/^/p${k}_/" "$VOC.part$k/ImageSets/Main/$s.txt" >> "$VOC/ImageSets/Main/$s.txt"; done
    rm -rf "$VOC.part$k"
  done
  echo "written in $(( $(date +%s) - t0 )) s: $(wc -l < "$VOC/ImageSets/Main/train.txt") train" | tee -a "$OUT/log.txt"
fi
