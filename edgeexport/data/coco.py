"""COCO detection JSON (``images``, ``annotations`` with [x, y, w, h] boxes, ``categories``)."""
import os
from collections import defaultdict

from ..device.errors import DatasetError
from ..device.fileio import read_json
from .common import AnnotationIssue, apply_policy, check_boxes, image_size, path_inside, read_rgb


def _load_json(ann_file):
    data = read_json(ann_file, " (COCO annotations)", DatasetError)
    if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
        raise DatasetError("{} is not COCO JSON: expected keys images, annotations, categories".format(ann_file))
    for key in ("images", "annotations", "categories"):
        if not isinstance(data[key], list):
            raise DatasetError("{} is not COCO JSON: {} must be a list, found {}".format(
                ann_file, key, type(data[key]).__name__))
    return data


def _is_id(value):
    """COCO ids are numbers (or, in some exporters, strings): never a list, an object or a bool."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _side(value):
    import math
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and \
        0 < value <= 100000


class COCODetection(object):
    def __init__(self, image_dir, ann_file, labels=None, on_bad="fail"):
        data = _load_json(ann_file)
        try:
            cats = sorted(data["categories"], key=lambda c: c["id"])
            id_to_name = {c["id"]: str(c["name"]) for c in cats}
        except (KeyError, TypeError) as e:
            raise DatasetError("{}: every category needs an id and a name ({}: {})".format(
                ann_file, type(e).__name__, e))
        self.labels = list(labels) if labels is not None else [id_to_name[c["id"]] for c in cats]
        index = {name: i + 1 for i, name in enumerate(self.labels)}
        per_image = defaultdict(list)
        issues, self.items = [], []
        for a in data["annotations"]:
            if not isinstance(a, dict) or not _is_id(a.get("image_id")):
                issues.append(AnnotationIssue(ann_file, "annotation without an image_id: {!r}".format(a)[:120]))
            elif not a.get("iscrowd", 0):
                per_image[a["image_id"]].append(a)
        for img in data["images"]:
            if not isinstance(img, dict) or not isinstance(img.get("file_name"), str) or not _is_id(img.get("id")):
                issues.append(AnnotationIssue(ann_file, "image entry without id or file_name: {!r}".format(img)[:120]))
                continue
            path = path_inside(image_dir, img["file_name"])
            where = "{} ({})".format(ann_file, img["file_name"])
            if path is None:  # '../x' or '/x': nothing outside the image folder is read
                issues.append(AnnotationIssue(where, "file_name is not a path inside {}".format(image_dir)))
                continue
            if not os.path.isfile(path):
                issues.append(AnnotationIssue(where, "image file not found at {}".format(path)))
                continue
            width, height = img.get("width"), img.get("height")
            if not _side(width) or not _side(height):
                width, height = image_size(path)  # optional in practice (or NaN, a string): the header has it
            boxes, names = [], []
            for a in per_image.get(img["id"], []):
                try:
                    x, y, w, h = [float(v) for v in a["bbox"]]
                except (KeyError, TypeError, ValueError):
                    issues.append(AnnotationIssue(where, "annotation {} has no [x, y, w, h] bbox".format(a.get("id"))))
                    continue
                boxes.append([x, y, x + w, y + h])
                names.append(id_to_name.get(a.get("category_id"), "<category id {}>".format(a.get("category_id"))))
            good, lab, bad = check_boxes(where, boxes, names, width, height, index)
            issues.extend(bad)
            if bad and on_bad == "skip" and len(good) == 0:
                continue
            self.items.append((path, good, lab))
        self.issues = issues
        apply_policy(issues, on_bad, "COCO {}".format(ann_file))
        if not self.items:
            raise DatasetError("{}: no usable images".format(ann_file))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, boxes, labels = self.items[i]
        return read_rgb(path), {"boxes": boxes.copy(), "labels": labels.copy(), "image_id": i}
