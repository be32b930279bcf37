"""Open Images as jetson-inference's open_images_downloader.py leaves it: sub-<split>-annotations-bbox.csv with
normalised boxes and ClassName, images at <split>/<ImageID>.jpg; the class filter; the dataset summary."""
import csv
import os

import numpy as np
import pytest
from PIL import Image

from edgeexport.data import OpenImagesDetection
from edgeexport.data.common import summary
from edgeexport.device.errors import DatasetError

from ..conftest import run_cli

COLUMNS = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax", "IsOccluded",
           "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside", "id", "ClassName"]


def make_openimages(root, n=24):
    rng = np.random.default_rng(0)
    for split in ("train", "validation"):
        os.makedirs(os.path.join(root, split))
        with open(os.path.join(root, "sub-{}-annotations-bbox.csv".format(split)), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            for i in range(n if split == "train" else n // 3):
                image_id = "{}{:04d}".format(split[0], i)
                img = np.full((120, 160, 3), 90, np.uint8)
                for cls, name in ((0, "Apple"), (1, "Orange"), (2, "Banana")):
                    if (i + cls) % 2:
                        x0, y0 = rng.uniform(0, 0.5), rng.uniform(0, 0.5)
                        x1, y1 = x0 + 0.3, y0 + 0.3
                        img[int(y0 * 120):int(y1 * 120), int(x0 * 160):int(x1 * 160)] = 60 * (cls + 1)
                        w.writerow([image_id, "xclick", "/m/0" + str(cls), 1, x0, x1, y0, y1, 0, 0, 0, 0, 0,
                                    "/m/0" + str(cls), name])
                Image.fromarray(img).save(os.path.join(root, split, image_id + ".jpg"))
    return root


def test_reads_boxes_in_pixels_filters_classes_and_summarises(tmp_path):
    root = make_openimages(str(tmp_path / "oi"))
    full = OpenImagesDetection(root, "train")
    assert full.labels == ["Apple", "Banana", "Orange"]
    fruit = OpenImagesDetection(root, "train", labels=["orange", "Apple"])  # names as the downloader's filter takes
    assert fruit.labels == ["orange", "Apple"]
    img, target = fruit[0]
    assert img.shape == (120, 160, 3) and (target["boxes"][:, 2] <= 160).all()
    assert set(np.concatenate([t[2] for t in fruit.items]).tolist()) == {1, 2}
    lines = summary("train", fruit)
    assert lines[0].startswith("train: {} images".format(len(fruit))) and "orange" in lines[1]
    assert sum(float(l.split()[-1].rstrip("%")) for l in lines[1:]) == pytest.approx(100, abs=0.2)
    with pytest.raises(DatasetError, match="no sub-test-annotations-bbox.csv"):
        OpenImagesDetection(root, "test")


def test_train_on_it_with_the_summary_at_start(tmp_path):
    root = make_openimages(str(tmp_path / "oi"))
    r = run_cli(["-m", "edgeexport.train", "--dataset", "openimages", "--data-path", root, "--labels", "Apple",
                 "Orange", "--arch", "ssdlite320_mobilenet_v3_small", "--epochs", "1", "-b", "4", "-j", "0",
                 "--no-progress", "--output-dir", str(tmp_path / "run")])
    assert r.returncode == 0, r.stderr
    assert "train: " in r.stdout and "val: " in r.stdout and "Apple" in r.stdout
    assert "img/s" in r.stdout


def test_short_rows_empty_classes_and_escaping_ids_are_annotation_issues(tmp_path):
    root = make_openimages(str(tmp_path / "oi"), n=4)
    with open(os.path.join(root, "sub-train-annotations-bbox.csv"), "a", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t0000", "xclick"])  # a short row
        w.writerow(["t0001", "xclick", "/m/00", 1, 0.1, 0.5, 0.1, 0.5, 0, 0, 0, 0, 0, "/m/00", ""])  # no class
        w.writerow(["../../x", "xclick", "/m/00", 1, 0.1, 0.5, 0.1, 0.5, 0, 0, 0, 0, 0, "/m/00", "Apple"])
    with pytest.raises(DatasetError, match="3 bad annotation"):
        OpenImagesDetection(root, "train", on_bad="fail")
    ds = OpenImagesDetection(root, "train", on_bad="skip")
    assert len(ds.issues) == 3 and all(os.path.dirname(p) == os.path.join(root, "train") for p, _, _ in ds.items)
