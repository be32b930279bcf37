"""mAP of a bundle, backend by backend, on the same images: where the accuracy goes between PyTorch and the board.

    python -m edgeexport.evaluate BUNDLE --model-path model.pth --dataset voc --data-path VOC --split val \
        --backend pytorch onnxruntime nvinfer [--json eval.json] [--png worst.png]
    python3 -m edgeexport.evaluate .  --backend tensorrt              (on the Jetson: the bundle's validation set)
    python -m edgeexport.evaluate BUNDLE --backend deepstream --results detections.json --dataset coco ...

One table, a row per backend (edgeexport.device.check.eval_rows): mAP@[.5:.95], mAP@.5, the change against the
``pytorch`` row (or against the PyTorch mAP export --val-data recorded in model.json for this set), detections per
image, images per second; per-class AP in the JSON; the images where two rows disagree most drawn side by side.
mAP by COCOeval (edgeexport.device.check.coco_eval). Where no mAP library is installed (a Jetson without pycocotools),
``--results-out`` writes each row's COCO results for the host to score (``--backend deepstream --results FILE``).
Device-side: the tensorrt and deepstream rows, and the bundle's validation set, need only numpy (+ TensorRT).
"""
import contextlib
import importlib
import json
import os
import shutil
import sys
import tempfile

import numpy as np

from ..bundle import Bundle
from ..deepstream.bundle_check import load_bundle, open_checked
from ..cli import ArgumentParser, image_count, image_side, probability, run_cli, seed
from ..errors import BackendUnavailableError, DatasetError, UsageError
from ..fileio import atomic_write_text
from ..outputs import RunOutputs
from .coco_eval import ValidationSet, score, scorer
from .eval_rows import ROWS, DeepStreamResults, make_row

VALIDATION_DIR = "validation"  # in a bundle: annotations.json, its file_names images/... (export --val-data)
DATASETS = ("bundle", "coco", "voc", "openimages", "synthetic")
# datasets read by the training host's readers, found by name only when asked for
HOST_DATASETS = "edgeexport.data.validation"


def load_validation_set(bundle, workdir, dataset=None, data_path=None, images=None, split=None,
                        synthetic_size=200, seed=2, max_images=None, synthetic_image_size=None):
    """The ValidationSet to score ``bundle`` on: its own (``dataset`` None or "bundle"), a COCO annotation file, or
    one of the training host's readers (voc, coco with images, openimages, synthetic: images written to
    ``workdir``)."""
    kind = dataset or ("bundle" if os.path.isfile(os.path.join(bundle.path, VALIDATION_DIR,
                                                                "annotations.json")) else None)
    if kind is None:
        raise UsageError("this bundle has no validation set (export --val-data writes one): pass --dataset and "
                         "--data-path")
    if kind not in DATASETS:
        raise UsageError("no dataset {!r}; available: {}".format(kind, ", ".join(DATASETS)))
    if kind == "bundle":
        return ValidationSet.load(os.path.join(bundle.path, VALIDATION_DIR, "annotations.json"))
    if kind == "coco" and data_path and data_path.endswith(".json"):
        return ValidationSet.load(data_path, images)
    try:
        host = importlib.import_module(HOST_DATASETS)
    except ImportError as e:
        raise BackendUnavailableError("--dataset {} is read on the training host (edgeexport[export]: {}); here, "
                                      "use the bundle's validation set or a COCO annotation file".format(kind, e))
    opened = host.open_dataset(kind, images or data_path, None, split, data_path if kind == "coco" else None,
                               synthetic_size, seed, synthetic_image_size, bundle.meta.model.num_classes)
    return host.to_validation_set(opened, workdir, max_images)


def check_shared_classes(vset, labels):
    """Classes are matched by name: a set that names none of the bundle's classes would score 0 for every row."""
    if not set(vset.category_ids) & set(labels):
        raise DatasetError("the validation set shares no class with the bundle: the set has {}, the bundle {}; "
                           "evaluate on a set of the bundle's classes".format(
                               ", ".join(sorted(vset.category_ids)) or "none", ", ".join(labels)))


def read_image(path):
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise UsageError("cannot read the image {}".format(path))
    return np.ascontiguousarray(img[..., ::-1])


def run_rows(rows, vset, max_images=None, progress=None):
    """Every row on every image (rows entered for the run and exited after it, whatever happens):
    {row name: {image_id: Detections}}, {row name: seconds} and the image ids in order."""
    images = vset.images[:max_images] if max_images else vset.images
    out = {r.name: {} for r in rows}
    with contextlib.ExitStack() as stack:
        for r in rows:
            stack.enter_context(r)
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
    from ..postprocess import Detections
    from .compare import match_detections
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
    from ..fileio import atomic_output_path
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


class Evaluation(object):
    """What evaluate_bundle measured: ``rows`` (one dict per backend, see table_rows), ``detections``
    ({backend: {image_id: Detections}}), ``image_ids``, the ValidationSet ``vset``, the PyTorch mAP the deltas are
    against when no pytorch row ran (``reference``) and the labels."""

    def __init__(self, rows, detections, image_ids, vset, labels, reference):
        self.rows, self.detections, self.image_ids = rows, detections, image_ids
        self.vset, self.labels, self.reference = vset, labels, reference

    def row(self, backend):
        """The table row of ``backend``."""
        for r in self.rows:
            if r["backend"] == backend:
                return r
        raise UsageError("no row {!r} in this evaluation; available: {}".format(
            backend, ", ".join(r["backend"] for r in self.rows)))

    def table(self):
        """The table as text, as the evaluate command prints it."""
        missing = sorted(set(self.labels) - set(self.vset.category_ids))
        title = "evaluate: {} images of {}{}".format(
            len(self.image_ids), self.vset.name,
            "" if not missing else " (classes absent from the set: {})".format(", ".join(missing)))
        text = format_table(self.rows, title)
        if self.reference is not None and "pytorch" not in self.detections:
            text += "\ndeltas are against PyTorch's mAP {:.4f}, which export recorded for this set".format(
                self.reference)
        return text

    def to_json(self, score_threshold):
        return json.dumps({"dataset": self.vset.name, "images": len(self.image_ids),
                           "score_threshold": score_threshold, "rows": self.rows}, indent=1) + "\n"


def evaluate_bundle(bundle, backends=("onnxruntime", "nvinfer"), model=None, dataset=None, data_path=None,
                    images=None, split=None, synthetic_size=200, seed=2, max_images=None, score_threshold=0.01,
                    engine=None, deepstream_results=None, workdir=None, progress=None, synthetic_image_size=None,
                    results_out=None):
    """mAP of ``bundle`` (a Bundle or its folder) backend by backend on one validation set; returns an Evaluation.

    ``backends``: rows in order, from pytorch (needs ``model``: the checkpoint path, or the in-memory torchvision
    SSD the bundle was exported from), fp16 (a checkpoint path; CUDA), onnxruntime, nvinfer (nvinfer's
    pre-processing and parser around ONNX Runtime), tensorrt (``engine``, default the one infer_config.txt names),
    deepstream (``deepstream_results``: what deepstream_app --coco-out wrote). The set: the bundle's own by default
    (export --val-data), else ``dataset`` voc/coco/openimages/synthetic with ``data_path`` (host readers; their
    images are written to ``workdir``, a temporary folder removed on return when not given; synthetic images are
    ``synthetic_image_size`` (H, W), or of random sizes).

    ``results_out``: a folder to write each row's detections to as COCO results (``<row>.json``), before scoring.
    Where no mAP library is installed (a Jetson without pycocotools) that is the way through: the rows run, the
    results are written, and the Evaluation has no ``rows`` (score them on the host as a deepstream row); without
    ``results_out`` it refuses before running anything."""
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle, strict=False)  # the nvinfer rows read the config themselves (GLib)
    backends = list(backends)
    unknown = [b for b in backends if b not in ROWS]
    if unknown or not backends:
        raise UsageError("no evaluate row {}; available: {}".format(", ".join(map(repr, unknown)) or "given",
                                                                     ", ".join(ROWS)))
    if "deepstream" in backends and not deepstream_results:
        raise UsageError("the deepstream row needs --results (what deepstream_app --coco-out wrote)")
    labels = bundle.labels
    try:
        scorer()
        can_score = True
    except BackendUnavailableError:
        if not results_out:
            raise
        can_score = False
    own = workdir is None
    workdir = tempfile.mkdtemp(prefix="edgeexport-eval-") if own else workdir
    try:
        vset = load_validation_set(bundle, workdir, dataset, data_path, images, split, synthetic_size, seed,
                                   max_images, synthetic_image_size)
        check_shared_classes(vset, labels)
        rows = [make_row(name, bundle, score_threshold, model, engine) for name in backends if name != "deepstream"]
        detections, seconds, image_ids = run_rows(rows, vset, max_images, progress)
        if "deepstream" in backends:
            ds = DeepStreamResults(deepstream_results, labels).detections(vset)
            detections["deepstream"] = ds
            if not rows:  # only DeepStream's results: score the images it saw
                image_ids = [i for i in image_ids if i in ds]
            image_ids = image_ids or sorted(ds)
        order = {name: k for k, name in enumerate(backends)}
        detections = dict(sorted(detections.items(), key=lambda kv: order[kv[0]]))
        if results_out:
            os.makedirs(results_out, exist_ok=True)
            kept = set(image_ids)
            for name, dets in detections.items():
                results = vset.results({i: d for i, d in dets.items() if i in kept}, labels)
                atomic_write_text(os.path.join(results_out, name + ".json"), json.dumps(results) + "\n")
        reference = recorded_reference(bundle, vset)
        table = table_rows(detections, seconds, vset, labels, image_ids, reference) if can_score else []
        return Evaluation(table, detections, image_ids, vset, labels, reference)
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


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
    p.add_argument("--synthetic-size", type=image_count, default=200)
    p.add_argument("--synthetic-image-size", type=image_side, nargs=2, metavar=("H", "W"),
                   help="synthetic: a fixed image size (default: random sizes from 256 to 480)")
    p.add_argument("--seed", type=seed, default=2,
                   help="synthetic: the set's seed (2 with --synthetic-image-size as trained: the trainer's held-out "
                        "split for its default --seed 0)")
    p.add_argument("--max-images", type=image_count, help="evaluate the first N images")
    p.add_argument("--score-threshold", type=probability, default=0.01,
                   help="detections kept down to this score in every row (mAP ranks them; the deployed "
                        "pre-cluster threshold would only cut the ranking)")
    p.add_argument("--engine", help="tensorrt row: the engine (default: the one infer_config.txt names)")
    p.add_argument("--results", help="deepstream row: COCO results written by deepstream_app --coco-out")
    p.add_argument("--json", help="write the table (and per-class AP) here")
    p.add_argument("--png", help="draw the images where the first and last rows disagree most")
    p.add_argument("--results-out", metavar="DIR",
                   help="also write each row's COCO results here (<row>.json); where no mAP library is installed, "
                        "only that, for the host to score with --backend deepstream --results")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(args):
    bundle = open_checked(args.bundle, strict=False)
    # what the run reads: a dataset file or folder, its images, a checkpoint, an engine, DeepStream's results
    outputs = RunOutputs(reads=[args.data_path, args.images, args.model_path, args.engine, args.results],
                         bundle=bundle)
    outputs.file(args.json, "--json")
    outputs.file(args.png, "--png")
    for name in args.backend if args.results_out else ():  # each row's detections: <results-out>/<row>.json
        outputs.file(os.path.join(args.results_out, name + ".json"), "--results-out")
    workdir = tempfile.mkdtemp(prefix="edgeexport-eval-")
    try:
        result = evaluate_bundle(
            bundle, args.backend, args.model_path, args.dataset, args.data_path, args.images, args.split,
            args.synthetic_size, args.seed, args.max_images, args.score_threshold, args.engine, args.results, workdir,
            None if args.no_progress or not sys.stderr.isatty() else show_progress, args.synthetic_image_size,
            args.results_out)
        if args.results_out:
            print("COCO results of each row: {}".format(", ".join(
                os.path.join(args.results_out, name + ".json") for name in result.detections)))
        if not result.rows:  # no mAP library here: the host scores what was written
            print("no mAP library here (pycocotools or faster-coco-eval); score on the host: python -m "
                  "edgeexport.evaluate BUNDLE --backend deepstream --results {} --dataset ... (the same set)".format(
                      os.path.join(args.results_out, "<row>.json")))
            return 0
        print(result.table())
        if args.json:
            outputs.write_text(args.json, result.to_json(args.score_threshold))
        if args.png and len(result.detections) >= 2:
            names = list(result.detections)
            if draw_disagreements(args.png, result.vset, result.detections, bundle.labels, names[0], names[-1]):
                print("disagreements ({} vs {}): {}".format(names[0], names[-1], args.png))
        outputs.report()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def cli(argv=None):
    run_cli(get_args_parser, main, argv)


if __name__ == "__main__":
    cli()
