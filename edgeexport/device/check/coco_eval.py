"""Validation sets in COCO's format and their mAP, scored by pycocotools' COCOeval (or faster-coco-eval's
reimplementation of it), never by hand.

A validation set is a COCO ground-truth JSON (images with file_name/width/height, annotations with bbox
[x, y, w, h] and category_id, categories with names) plus the folder of its images: what export --val-data writes
into a bundle, what any COCO dataset already is, and what the host converts VOC, Open Images and synthetic sets to.
Classes are matched by name between the model's labels and the set's categories.
Device-side (Python 3.6): the scorer is imported when asked for; where neither library is installed (a Jetson
without `pip3 install pycocotools`) the caller writes COCO results for the host to score.
"""
import contextlib
import io
import os

import numpy as np

from ..errors import BackendUnavailableError, InputFileError
from ..fileio import read_json


def scorer():
    """(COCO, COCOeval) classes: faster-coco-eval's where installed, else pycocotools'."""
    try:
        from faster_coco_eval import COCO, COCOeval_faster
        return COCO, COCOeval_faster
    except ImportError:
        pass
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        return COCO, COCOeval
    except ImportError:
        raise BackendUnavailableError("scoring mAP needs pycocotools (pip3 install pycocotools; on Python 3.6 it "
                                      "builds from source) or faster-coco-eval; or write the results with "
                                      "--results-out and score them on the host")


class ValidationSet(object):
    """COCO ground truth (a dict) and the folder its file_names are relative to."""

    def __init__(self, gt, image_dir, name="validation"):
        self.gt, self.image_dir, self.name = gt, image_dir, name
        self.images = sorted(gt["images"], key=lambda im: im["id"])
        self.category_ids = {c["name"]: int(c["id"]) for c in gt["categories"]}
        self.by_file = {os.path.basename(im["file_name"]): im for im in self.images}

    @classmethod
    def load(cls, ann_file, image_dir=None):
        gt = read_json(ann_file)
        problems = _check_gt(gt)
        if problems:
            raise InputFileError("{} is not a COCO ground truth: {}".format(ann_file, problems))
        return cls(gt, image_dir or os.path.dirname(os.path.abspath(ann_file)), os.path.basename(ann_file))

    def path(self, image):
        return os.path.join(self.image_dir, image["file_name"])

    def class_map(self, labels):
        """Model class index -> this set's category id, by name (classes the set lacks are left out)."""
        return {i: self.category_ids[name] for i, name in enumerate(labels) if name in self.category_ids}

    def results(self, detections, labels):
        """COCO results for {image_id: Detections in image pixels} of a model with ``labels``. Each also names its
        file and class, as deepstream_app --coco-out does: a file written on one machine is scored on another by
        name (evaluate --backend deepstream --results), whatever ids that machine's copy of the set uses."""
        cmap = self.class_map(labels)
        files = {im["id"]: im["file_name"] for im in self.images}
        out = []
        for image_id, d in detections.items():
            for b, s, c in zip(d.boxes, d.scores, d.classes):
                if int(c) in cmap:
                    out.append({"image_id": int(image_id), "file_name": files[int(image_id)],
                                "category_id": cmap[int(c)], "category_name": labels[int(c)], "score": float(s),
                                "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
        return out


def coco_annotation(ann_id, image_id, category_id, box):
    """A COCO ground-truth annotation of the x1y1x2y2 ``box`` (COCO's bbox is x, y, width, height)."""
    x1, y1, x2, y2 = [float(v) for v in box]
    return {"id": int(ann_id), "image_id": int(image_id), "category_id": int(category_id),
            "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}


def _check_gt(gt):
    if not isinstance(gt, dict):
        return "a {}, expected an object".format(type(gt).__name__)
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            return "no {} list".format(key)
    if not gt["images"]:
        return "no images"
    if any(not isinstance(c, dict) or "id" not in c or "name" not in c for c in gt["categories"]):
        return "categories need id and name"
    if any(not isinstance(im, dict) or not {"id", "file_name", "width", "height"} <= set(im) for im in gt["images"]):
        return "images need id, file_name, width and height"
    return None


def score(vset, results):
    """mAP of COCO ``results`` on ``vset``: {"map", "map50", "per_class": {name: AP@[.5:.95]},
    "per_class50": {name: AP@.5}}, fractions as COCOeval's stats."""
    COCO, COCOeval = scorer()
    gt = dict(vset.gt)
    gt.setdefault("info", {})
    gt.setdefault("licenses", [])
    names = {cid: name for name, cid in vset.category_ids.items()}
    empty = {"map": 0.0, "map50": 0.0, "per_class": {n: 0.0 for n in vset.category_ids},
             "per_class50": {n: 0.0 for n in vset.category_ids}}
    if not results:
        return empty
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(list(results))
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = np.asarray(ev.stats, dtype=float)
    # precision[T, R, K, A, M]: IoU thresholds, recall points, categories, area ranges, max detections
    precision = np.asarray(ev.eval["precision"], dtype=float)
    per, per50 = {}, {}
    for k, cid in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        per[names[cid]] = float(np.mean(p[p > -1])) if (p > -1).any() else 0.0
        p50 = precision[0, :, k, 0, -1]
        per50[names[cid]] = float(np.mean(p50[p50 > -1])) if (p50 > -1).any() else 0.0
    return {"map": max(float(stats[0]), 0.0), "map50": max(float(stats[1]), 0.0), "per_class": per,
            "per_class50": per50}
