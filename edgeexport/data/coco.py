"""COCO detection JSON (``images``, ``annotations`` with [x, y, w, h] boxes, ``categories``)."""
import os
from collections import defaultdict

from ..device.errors import DatasetError
from ..device.check.coco_eval import coco_problems, image_side_ok
from ..device.fileio import path_inside, read_json
from .common import AnnotationIssue, apply_policy, check_boxes, image_size, read_rgb, stored_size_issue


class COCODetection(object):
    def __init__(self, image_dir, ann_file, labels=None, on_bad="fail"):
        # one reader of the format (coco_problems, shared with evaluate): an entry that is not valid is a bad
        # annotation (refused, or skipped under --on-bad-annotation skip); a file of the wrong shape is refused
        data = read_json(ann_file, " (COCO annotations)", DatasetError)
        problems = coco_problems(data, image_dir)
        if problems and problems[0][0] == "":
            raise DatasetError("{} is not COCO JSON: {}".format(ann_file, problems[0][1]))
        issues = [AnnotationIssue("{} ({})".format(ann_file, where), what) for where, what in problems]
        rejected = {where for where, _ in problems}
        cats = sorted((c for i, c in enumerate(data["categories"]) if "categories[{}]".format(i) not in rejected),
                      key=lambda c: (str(type(c["id"])), c["id"]))
        id_to_name = {c["id"]: c["name"].strip() for c in cats}
        self.labels = list(labels) if labels is not None else [id_to_name[c["id"]] for c in cats]
        index = {name: i + 1 for i, name in enumerate(self.labels)}
        per_image = defaultdict(list)
        self.items = []
        for i, a in enumerate(data["annotations"]):
            if "annotations[{}]".format(i) not in rejected and not a.get("iscrowd", 0):
                per_image[a["image_id"]].append(a)
        for i, img in enumerate(data["images"]):
            if "images[{}]".format(i) in rejected:
                continue
            path = path_inside(image_dir, img["file_name"])
            where = "{} ({})".format(ann_file, img["file_name"])
            if not os.path.isfile(path):
                issues.append(AnnotationIssue(where, "image file not found at {}".format(path)))
                continue
            width, height = img.get("width"), img.get("height")
            wrong = None
            if not image_side_ok(width) or not image_side_ok(height):
                width, height = image_size(path)  # optional in practice (or NaN, a string): the header has it
            else:
                wrong = stored_size_issue(path, width, height)
            if wrong:
                issues.append(AnnotationIssue(where, wrong))
                continue
            boxes, names = [], []
            for a in per_image.get(img["id"], []):
                x, y, w, h = [float(v) for v in a["bbox"]]
                boxes.append([x, y, x + w, y + h])
                names.append(id_to_name[a["category_id"]])
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
