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
from ..fileio import path_inside, read_json
from ..meta import is_finite_number


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
        """A COCO ground truth read from a file someone handed us: every entry checked (coco_problems), its
        file_names inside ``image_dir`` (default: the file's folder), or InputFileError naming the first bad one."""
        gt = read_json(ann_file)
        image_dir = image_dir or os.path.dirname(os.path.abspath(ann_file))
        problems = coco_problems(gt, image_dir, need_sizes=True)
        if problems:
            where, what = problems[0]
            raise InputFileError("{} is not a COCO ground truth: {}{}{}".format(
                ann_file, where + ": " if where else "", what,
                " (and {} more)".format(len(problems) - 1) if len(problems) > 1 else ""))
        return cls(gt, image_dir, os.path.basename(ann_file))

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


def image_side_ok(v):
    """A COCO width or height an image can have: a finite number in (0, 100000]."""
    return is_finite_number(v) and 0 < v <= 100000


def coco_id(v):
    """COCO ids are integers (some exporters write strings): never a bool, a float, a list or an object."""
    return isinstance(v, (int, str)) and not isinstance(v, bool)


def coco_problems(gt, image_dir=None, need_sizes=False):
    """COCO detection JSON checked field by field, the one reader of the format (evaluate's validation sets here;
    the training host's COCODetection too). Returns [(where, what)]: ``where`` "" for the file's shape (nothing
    else is checked then), else "images[3]" etc. for an entry that is not valid (the caller refuses the file, or
    skips the entry under --on-bad-annotation skip). ``image_dir``: file_names must stay inside it.
    ``need_sizes``: images must give width and height (pycocotools' scorer reads them)."""
    if not isinstance(gt, dict):
        return [("", "expected an object with images, annotations and categories, found {}".format(
            type(gt).__name__))]
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            return [("", "{} must be a list, found {}".format(key, "nothing" if key not in gt else
                                                            type(gt[key]).__name__))]
    if not gt["images"]:
        return [("", "no images")]
    problems = []
    cats, images = set(), set()
    for i, c in enumerate(gt["categories"]):
        where = "categories[{}]".format(i)
        if not isinstance(c, dict) or not coco_id(c.get("id")) or not isinstance(c.get("name"), str) \
                or not c["name"].strip():
            problems.append((where, "expected {{id: an integer, name: a non-empty string}}, found {!r}".format(
                c)[:160]))
        elif c["id"] in cats:
            problems.append((where, "category id {!r} appears twice".format(c["id"])))
        else:
            cats.add(c["id"])
    kinds = set()
    for i, im in enumerate(gt["images"]):
        where = "images[{}]".format(i)
        if not isinstance(im, dict) or not coco_id(im.get("id")) or not isinstance(im.get("file_name"), str):
            problems.append((where, "expected {{id, file_name: a string, ...}}, found {!r}".format(im)[:160]))
            continue
        if im["id"] in images:
            problems.append((where, "image id {!r} appears twice".format(im["id"])))
            continue
        kinds.add(type(im["id"]))
        if image_dir is not None and path_inside(image_dir, im["file_name"]) is None:
            problems.append((where, "file_name {!r} is not a path inside {}".format(im["file_name"][:100], image_dir)))
            continue
        sizes = [im.get("width"), im.get("height")]
        if need_sizes and not all(image_side_ok(v) for v in sizes):
            problems.append((where, "width and height must be numbers in (0, 100000], found {}".format(sizes)))
            continue
        images.add(im["id"])
    if len(kinds) > 1:
        problems.append(("images", "ids mix integers and strings"))
    for i, a in enumerate(gt["annotations"]):
        where = "annotations[{}]".format(i)
        box = a.get("bbox") if isinstance(a, dict) else None
        if not isinstance(a, dict) or not coco_id(a.get("image_id")) or not coco_id(a.get("category_id")):
            problems.append((where, "expected {{image_id, category_id, bbox, ...}}, found {!r}".format(a)[:160]))
        elif not isinstance(box, list) or len(box) != 4 or not all(is_finite_number(v) for v in box) or box[2] < 0 \
                or box[3] < 0:
            problems.append((where, "bbox must be [x, y, width, height], 4 finite numbers, width and height >= 0; "
                                    "found {!r}".format(box)[:160]))
        elif a["image_id"] not in images:
            problems.append((where, "image_id {!r} names no (valid) image".format(a["image_id"])))
        elif a["category_id"] not in cats:
            problems.append((where, "category_id {!r} names no category".format(a["category_id"])))
        elif a.get("iscrowd", 0) not in (0, 1, False, True) or ("area" in a and not is_finite_number(a["area"])):
            problems.append((where, "iscrowd must be 0 or 1 and area a finite number, found {!r} and {!r}".format(
                a.get("iscrowd"), a.get("area"))))
    return problems


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
