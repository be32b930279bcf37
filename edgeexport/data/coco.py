"""COCO detection JSON (``images``, ``annotations`` with [x, y, w, h] boxes, ``categories``)."""
import json
import os
from collections import defaultdict

from ..errors import DatasetError
from .common import AnnotationIssue, apply_policy, check_boxes, read_rgb


class COCODetection(object):
    def __init__(self, image_dir, ann_file, labels=None, on_bad="fail"):
        try:
            with open(ann_file) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise DatasetError("cannot read COCO annotations {}: {}".format(ann_file, e))
        if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
            raise DatasetError("{} is not COCO JSON: expected keys images, annotations, categories".format(ann_file))
        cats = sorted(data["categories"], key=lambda c: c["id"])
        id_to_name = {c["id"]: c["name"] for c in cats}
        self.labels = list(labels) if labels is not None else [c["name"] for c in cats]
        index = {name: i + 1 for i, name in enumerate(self.labels)}
        per_image = defaultdict(list)
        for a in data["annotations"]:
            if not a.get("iscrowd", 0):
                per_image[a["image_id"]].append(a)
        issues, self.items = [], []
        for img in data["images"]:
            path = os.path.join(image_dir, img["file_name"])
            where = "{} ({})".format(ann_file, img["file_name"])
            if not os.path.isfile(path):
                issues.append(AnnotationIssue(where, "image file not found at {}".format(path)))
                continue
            boxes, names = [], []
            for a in per_image.get(img["id"], []):
                x, y, w, h = a["bbox"]
                boxes.append([x, y, x + w, y + h])
                names.append(id_to_name.get(a["category_id"], "<category id {}>".format(a["category_id"])))
            good, lab, bad = check_boxes(where, boxes, names, img["width"], img["height"], index)
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
