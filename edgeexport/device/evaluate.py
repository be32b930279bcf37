"""mAP of a bundle, backend by backend, on the same images: where the accuracy goes between PyTorch and the board.

    python -m edgeexport.evaluate BUNDLE --model-path model.pth --dataset voc --data-path VOC --split val \
        --backend pytorch onnxruntime nvinfer [--json eval.json] [--png worst.png]
    python3 -m edgeexport.evaluate .  --backend tensorrt              (on the Jetson: the bundle's validation set)
    python -m edgeexport.evaluate BUNDLE --backend deepstream --results detections.json --dataset coco ...

One table, a row per backend (edgeexport.device.eval_rows): mAP@[.5:.95], mAP@.5, the change against the
``pytorch`` row (or against the PyTorch mAP export --val-data recorded in model.json for this set), detections per
image, images per second; per-class AP in the JSON; the images where two rows disagree most drawn side by side.
mAP by COCOeval (edgeexport.device.coco_eval). Where no mAP library is installed (a Jetson without pycocotools),
``--results-out`` writes each row's COCO results for the host to score (``--backend deepstream --results FILE``).
Device-side: the tensorrt and deepstream rows, and the bundle's validation set, need only numpy (+ TensorRT).
"""
import importlib
import json
import os
import shutil
import sys
import tempfile

import numpy as np

from .bundle import Bundle
from .cli import ArgumentParser, positive_int, probability, run_cli
from .coco_eval import ValidationSet, score
from .errors import BackendUnavailableError, UsageError
from .eval_rows import ROWS, DeepStreamResults, make_row
from .fileio import atomic_write_text, check_output_file

VALIDATION_DIR = "validation"  # in a bundle: annotations.json, its file_names images/... (export --val-data)
DATASETS = ("bundle", "coco", "voc", "openimages", "synthetic")
# datasets read by the training host's readers, found by name only when asked for
HOST_DATASETS = "edgeexport.data.validation"


def load_validation_set(args, bundle, workdir):
    kind = args.dataset or ("bundle" if os.path.isfile(os.path.join(bundle.path, VALIDATION_DIR,
                                                                     "annotations.json")) else None)
    if kind is None:
        raise UsageError("this bundle has no validation set (export --val-data writes one): pass --dataset and "
                         "--data-path")
    if kind == "bundle":
        return ValidationSet.load(os.path.join(bundle.path, VALIDATION_DIR, "annotations.json"))
    if kind == "coco" and args.data_path and args.data_path.endswith(".json"):
        return ValidationSet.load(args.data_path, args.images)
    try:
        host = importlib.import_module(HOST_DATASETS)
    except ImportError as e:
        raise BackendUnavailableError("--dataset {} is read on the training host (edgeexport[export]: {}); here, "
                                      "use the bundle's validation set or a COCO annotation file".format(kind, e))
    dataset = host.open_dataset(kind, args.images or args.data_path, None, args.split,
                                args.data_path if kind == "coco" else None, args.synthetic_size, args.seed,
                                None, bundle.meta.model.num_classes)
    return host.to_validation_set(dataset, workdir, args.max_images)


def read_image(path):
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise UsageError("cannot read the image {}".format(path))
    return np.ascontiguousarray(img[..., ::-1])


def run_rows(rows, vset, max_images=None, progress=None):
    """{row name: {image_id: Detections}} and {row name: seconds}."""
    images = vset.images[:max_images] if max_images else vset.images
    out = {r.name: {} for r in rows}
    for n, image in enumerate(images):
        rgb = read_image(vset.path(image))
        for r in rows:
            out[r.name][image["id"]] = r.timed(rgb)
        if progress:
            progress(n + 1, len(images))
    return out, {r.name: r.seconds for r in rows}, [im["id"] for im in images]


def table_rows(detections, seconds, vset, labels, image_ids, reference=None):
    """One dict per row: backend, map, map50, delta_map (points, against the pytorch row or ``reference``),
    detections per image, images per second, per-class AP."""
    subset = dict(vset.gt)
    keep = set(image_ids)
    subset["images"] = [im for im in vset.gt["images"] if im["id"] in keep]
    subset["annotations"] = [a for a in vset.gt["annotations"] if a["image_id"] in keep]
    evaluated = ValidationSet(subset, vset.image_dir, vset.name)
    rows = []
    for name, dets in detections.items():
        results = evaluated.results({i: d for i, d in dets.items() if i in keep}, labels)
        s = score(evaluated, results)
        n = len(keep)
        rows.append({"backend": name, "map": s["map"], "map50": s["map50"],
                     "detections_per_image": sum(len(d) for i, d in dets.items() if i in keep) / float(n),
                     "images_per_second": n / seconds[name] if seconds.get(name) else None,
                     "per_class": s["per_class"], "per_class50": s["per_class50"], "images": n})
    base = next((r["map"] for r in rows if r["backend"] == "pytorch"), reference)
    for r in rows:
        r["delta_map"] = None if base is None else 100.0 * (r["map"] - base)
    return rows


def format_table(rows, title):
    lines = [title, "  {:<12} {:>8} {:>8} {:>12} {:>9} {:>9}".format("backend", "mAP", "mAP@.5", "delta (pts)",
                                                                     "det/img", "img/s")]
    for r in rows:
        lines.append("  {:<12} {:>8.4f} {:>8.4f} {:>12} {:>9.1f} {:>9}".format(
            r["backend"], r["map"], r["map50"], "-" if r["delta_map"] is None else "{:+.2f}".format(r["delta_map"]),
            r["detections_per_image"], "-" if r["images_per_second"] is None else "{:.1f}".format(
                r["images_per_second"])))
    return "\n".join(lines)


def disagreement(a, b, threshold=0.3, iou=0.5):
    """1 - the fraction of detections above ``threshold`` that two rows share (same class, IoU >= ``iou``)."""
    from .compare import match_detections
    from .postprocess import Detections
    ka, kb = a.scores >= threshold, b.scores >= threshold
    da = Detections(a.boxes[ka], a.scores[ka], a.classes[ka])
    db = Detections(b.boxes[kb], b.scores[kb], b.classes[kb])
    pairs, miss, extra = match_detections(da, db, iou)
    total = len(pairs) + len(miss) + len(extra)
    return 0.0 if total == 0 else 1.0 - len(pairs) / float(total)


def draw_disagreements(path, vset, detections, labels, first, second, count=4, threshold=0.3):
    """A PNG of the ``count`` images where rows ``first`` and ``second`` disagree most, side by side."""
    import cv2
    common = sorted(set(detections[first]) & set(detections[second]))
    worst = sorted(common, key=lambda i: -disagreement(detections[first][i], detections[second][i], threshold))
    tiles = []
    for image_id in worst[:count]:
        image = next(im for im in vset.images if im["id"] == image_id)
        rgb = read_image(vset.path(image))
        pair = []
        for name in (first, second):
            canvas = np.ascontiguousarray(rgb[..., ::-1])
            d = detections[name][image_id]
            for b, s, c in zip(d.boxes, d.scores, d.classes):
                if s >= threshold:
                    x1, y1, x2, y2 = [int(round(float(v))) for v in b]
                    cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 200, 255), 2)
                    cv2.putText(canvas, "{} {:.2f}".format(labels[int(c)], float(s)), (x1, max(12, y1 - 3)),
                                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 200, 255), 1, cv2.LINE_AA)
            cv2.putText(canvas, "{} ({})".format(name, image["file_name"][-30:]), (5, 18), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5, (255, 255, 255), 1, cv2.LINE_AA)
            pair.append(canvas)
        tile = np.concatenate(pair, 1)
        scale = 640.0 / tile.shape[1]
        tiles.append(cv2.resize(tile, (640, max(1, int(tile.shape[0] * scale)))))
    if not tiles:
        return None
    from .fileio import atomic_output_path
    with atomic_output_path(path) as tmp:
        if not cv2.imwrite(tmp, np.concatenate(tiles, 0)):
            raise UsageError("cannot write {}".format(path))
    return path


def recorded_reference(bundle, vset):
    """The PyTorch mAP export --val-data recorded for this very set (the bundle's), or None."""
    v = bundle.meta.validation or {}
    if vset.name != "annotations.json" or v.get("images") != len(vset.images):
        return None
    return next((r["map"] for r in v.get("rows", []) if r["backend"] == "pytorch"), None)


def show_progress(i, n):
    sys.stderr.write("\revaluate: {}/{} images".format(i, n) + ("\n" if i == n else ""))


def get_args_parser(add_help=True):
    p = ArgumentParser(description="mAP of a bundle backend by backend on one validation set.", add_help=add_help)
    p.add_argument("bundle", help="the bundle folder written by export.py")
    p.add_argument("--backend", nargs="+", default=["onnxruntime", "nvinfer"], choices=ROWS,
                   help="rows, in order: pytorch (needs --model-path), onnxruntime, nvinfer, tensorrt, deepstream "
                        "(needs --results)")
    p.add_argument("--model-path", help="the checkpoint the bundle was exported from (pytorch row)")
    p.add_argument("--dataset", choices=DATASETS, help="default: the bundle's validation set when it has one")
    p.add_argument("--data-path", help="voc: the VOC root; coco: the annotation JSON; openimages: the downloader's "
                                       "folder")
    p.add_argument("--images", help="coco: the image folder (default: beside the JSON)")
    p.add_argument("--split", help="voc: ImageSets/Main/<split>.txt; openimages: train, validation (default), test")
    p.add_argument("--synthetic-size", type=positive_int, default=200)
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--max-images", type=positive_int, help="evaluate the first N images")
    p.add_argument("--score-threshold", type=probability, default=0.01,
                   help="detections kept down to this score in every row (mAP ranks them; the deployed "
                        "pre-cluster threshold would only cut the ranking)")
    p.add_argument("--engine", help="tensorrt row: the engine (default: the one infer_config.txt names)")
    p.add_argument("--results", help="deepstream row: COCO results written by deepstream_app --coco-out")
    p.add_argument("--json", help="write the table (and per-class AP) here")
    p.add_argument("--png", help="draw the images where the first and last rows disagree most")
    p.add_argument("--results-out", metavar="DIR", help="also write each row's COCO results here")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(args):
    bundle = Bundle(args.bundle)
    for out in (args.json, args.png):
        if out:
            check_output_file(out)
    if "deepstream" in args.backend and not args.results:
        raise UsageError("the deepstream row needs --results (what deepstream_app --coco-out wrote)")
    labels = bundle.labels
    workdir = tempfile.mkdtemp(prefix="edgeexport-eval-")
    try:
        vset = load_validation_set(args, bundle, workdir)
        rows = [make_row(name, bundle, args) for name in args.backend if name != "deepstream"]
        progress = None if args.no_progress or not sys.stderr.isatty() else show_progress
        entered = []
        try:
            for r in rows:
                entered.append(r.__enter__())
            detections, seconds, image_ids = run_rows(rows, vset, args.max_images, progress)
        finally:
            for r in entered:
                r.__exit__(None, None, None)
        if "deepstream" in args.backend:
            ds = DeepStreamResults(args.results, labels).detections(vset)
            detections["deepstream"] = ds
            image_ids = [i for i in image_ids if i in ds] if not rows else image_ids
            if not image_ids:
                image_ids = sorted(ds)
        order = {name: k for k, name in enumerate(args.backend)}
        detections = dict(sorted(detections.items(), key=lambda kv: order[kv[0]]))
        if args.results_out:
            os.makedirs(args.results_out, exist_ok=True)
            for name, dets in detections.items():
                atomic_write_text(os.path.join(args.results_out, name + ".json"),
                                  json.dumps(vset.results(dets, labels)) + "\n")
        reference = recorded_reference(bundle, vset)
        table = table_rows(detections, seconds, vset, labels, image_ids, reference)
        missing = sorted(set(labels) - set(vset.category_ids))
        title = "evaluate: {} images of {}{}".format(len(image_ids), vset.name, "" if not missing else
                                                     " (classes absent from the set: {})".format(", ".join(missing)))
        print(format_table(table, title))
        if reference is not None and "pytorch" not in detections:
            print("deltas are against PyTorch's mAP {:.4f}, which export recorded for this set".format(reference))
        if args.json:
            atomic_write_text(args.json, json.dumps({"dataset": vset.name, "images": len(image_ids),
                                                     "score_threshold": args.score_threshold, "rows": table},
                                                    indent=1) + "\n")
        if args.png and len(detections) >= 2:
            names = list(detections)
            if draw_disagreements(args.png, vset, detections, labels, names[0], names[-1]):
                print("disagreements ({} vs {}): {}".format(names[0], names[-1], args.png))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def cli(argv=None):
    run_cli(get_args_parser, main, argv)


if __name__ == "__main__":
    cli()
