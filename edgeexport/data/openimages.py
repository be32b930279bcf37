"""The folder jetson-inference's open_images_downloader.py writes (python/training/detection/ssd): per split a
``sub-<split>-annotations-bbox.csv`` (Open Images' box CSV with the class name joined in as ``ClassName``; boxes
normalised, ``XMin``, ``XMax``, ``YMin``, ``YMax``) and the images as ``<split>/<ImageID>.jpg``.

    --dataset openimages --data-path ROOT [--labels Apple Orange]   (class filter: names as in ClassName)
"""
import csv
import os
from collections import OrderedDict

from ..device.errors import DatasetError
from ..device.fileio import file_inside
from .common import AnnotationIssue, apply_policy, check_boxes, image_size, read_rgb

SPLITS = ("train", "validation", "test")


class OpenImagesDetection(object):
    def __init__(self, root, split="train", labels=None, on_bad="fail"):
        if split not in SPLITS:
            raise DatasetError("Open Images split must be one of {}, got {!r}".format(", ".join(SPLITS), split))
        csv_path = os.path.join(root, "sub-{}-annotations-bbox.csv".format(split))
        if not os.path.isfile(csv_path):
            raise DatasetError("{} is not an Open Images folder of open_images_downloader.py: no {}".format(
                root, os.path.basename(csv_path)))
        wanted = None if labels is None else {l.lower(): l for l in labels}
        per_image, issues = OrderedDict(), []
        try:
            with open(csv_path, newline="") as f:
                reader = csv.DictReader(f)
                missing = {"ImageID", "ClassName", "XMin", "XMax", "YMin", "YMax"} - set(reader.fieldnames or [])
                if missing:
                    raise DatasetError("{} lacks the columns {}".format(csv_path, ", ".join(sorted(missing))))
                for row in reader:
                    row = {k: (v or "").strip() for k, v in row.items() if k is not None}  # short rows: ""
                    name = row["ClassName"]
                    if not name or file_inside(os.path.join(root, split), row["ImageID"], ".jpg") is None:
                        issues.append(AnnotationIssue(csv_path, "row without a class or with an ImageID that is "
                                                      "not a file name: {!r}".format(row["ImageID"])))
                        continue
                    if wanted is not None:
                        if name.lower() not in wanted:
                            continue
                        name = wanted[name.lower()]
                    try:
                        box = [float(row[k]) for k in ("XMin", "YMin", "XMax", "YMax")]
                    except ValueError:  # "" (a short row) included
                        issues.append(AnnotationIssue(csv_path, "non-numeric box for image {}".format(row["ImageID"])))
                        continue
                    per_image.setdefault(row["ImageID"], []).append((box, name))
        except (IOError, OSError, UnicodeDecodeError, csv.Error) as e:
            raise DatasetError("cannot read {}: {}".format(csv_path, getattr(e, "strerror", None) or e))
        if labels is None:
            labels = sorted({name for anns in per_image.values() for _, name in anns})
        self.labels = list(labels)
        index = {name: i + 1 for i, name in enumerate(self.labels)}
        self.items = []
        for image_id, anns in per_image.items():
            path = os.path.join(root, split, image_id + ".jpg")
            if not os.path.isfile(path):
                issues.append(AnnotationIssue(path, "image file not found"))
                continue
            w, h = image_size(path)
            boxes = [[b[0] * w, b[1] * h, b[2] * w, b[3] * h] for b, _ in anns]
            good, lab, bad = check_boxes(path, boxes, [n for _, n in anns], w, h, index)
            issues.extend(bad)
            if len(good):
                self.items.append((path, good, lab))
        self.issues = issues
        apply_policy(issues, on_bad, "Open Images {} ({})".format(root, split))
        if not self.items:
            raise DatasetError("{}: no {} images with boxes{}".format(
                root, split, "" if wanted is None else " of the classes " + ", ".join(self.labels)))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, boxes, labels = self.items[i]
        return read_rgb(path), {"boxes": boxes.copy(), "labels": labels.copy(), "image_id": i}
