"""The fuzzer of every reader of an untrusted file: a valid file of each format, changed by Hypothesis (a field
made another type, NaN, huge, empty, a path out of the folder; lines deleted, repeated, cut; bytes spliced in),
read as the command that reads it does. The properties, for every example:

- the reader returns, or raises an EdgeExportError (what a command turns into one line): nothing else escapes;
- it opens no file outside the folder it was given (a file planted beside that folder, reachable by "../" and by
  its absolute path, which the hostile values name);
- it ends within its bound (BOUND_S).

Budget and seed: tests/fuzzing.py (EDGEEXPORT_FUZZ_EXAMPLES per reader, EDGEEXPORT_FUZZ_SEED).
"""
import json
import os
import shutil
import traceback

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeexport.device.errors import EdgeExportError

from .fuzzing import (OpenWatch, Watchdog, apply_json_edits, apply_text_edits, dump_json, fuzz_settings, json_edits,
                      text_edits)

BOUND_S = 30
# The paths the COCO edits may take (Hypothesis draws them before the valid document is built: its first entries)
COCO_SHAPE = {"images": [{"id": 1, "file_name": "im1.jpg", "width": 64, "height": 48}],
              "categories": [{"id": 1, "name": "circle"}],
              "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 10], "area": 200,
                               "iscrowd": 0}]}


class Ground(dict):
    def __repr__(self):  # Hypothesis prints a failing example's arguments: this one by name, not its contents
        return "ground"


@pytest.fixture(scope="module")
def ground(tmp_path_factory, small_bundle, small_checkpoint):
    """A folder with the valid samples and, beside where each run's folder goes, the planted 'outside' files."""
    from PIL import Image

    from edgeexport.data.make_voc import write_voc
    root = str(tmp_path_factory.mktemp("fuzz_readers"))
    img = np.full((48, 64, 3), 90, np.uint8)
    for name in ("outside", "outside.jpg"):
        Image.fromarray(img).save(os.path.join(root, name), format="JPEG")
    open(os.path.join(root, "outside.xml"), "w").write(
        "<annotation><filename>outside.jpg</filename><object><name>circle</name><bndbox><xmin>1</xmin><ymin>1"
        "</ymin><xmax>30</xmax><ymax>30</ymax></bndbox></object></annotation>")
    g = Ground(root=root, bundle=small_bundle[0], checkpoint=small_checkpoint)
    g["voc"] = os.path.join(root, "voc")
    write_voc(g["voc"], train=2, val=1, size=(64, 48), natural=False)
    coco = os.path.join(root, "coco")
    os.makedirs(coco)
    for i in (1, 2):
        Image.fromarray(img).save(os.path.join(coco, "im{}.jpg".format(i)))
    g["coco_doc"] = {
        "images": [{"id": 1, "file_name": "im1.jpg", "width": 64, "height": 48},
                   {"id": 2, "file_name": "im2.jpg", "width": 64, "height": 48}],
        "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 10], "area": 200, "iscrowd": 0},
                        {"id": 2, "image_id": 2, "category_id": 2, "bbox": [5, 5, 30, 30], "area": 900,
                         "iscrowd": 0}]}
    g["coco"] = coco
    oi = os.path.join(root, "oi")
    os.makedirs(os.path.join(oi, "train"))
    for name in ("a1", "b2"):
        Image.fromarray(img).save(os.path.join(oi, "train", name + ".jpg"))
    g["oi"] = oi
    g["oi_csv"] = (b"ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,ClassName\n"
                   b"a1,xclick,/m/01,1,0.1,0.5,0.2,0.6,0,Apple\nb2,xclick,/m/02,1,0.3,0.9,0.1,0.8,0,Orange\n")
    g["results_doc"] = [{"image_id": 1, "file_name": "im1.jpg", "category_id": 1, "category_name": "circle",
                         "score": 0.9, "bbox": [2, 3, 20, 10]}]
    return g


def _fresh(ground, name, template=None):
    """An empty (or copied from ``template``) run folder under the ground, the planted files one level up."""
    folder = os.path.join(ground["root"], "runs", name)
    shutil.rmtree(folder, ignore_errors=True)
    if template:
        shutil.copytree(template, folder)
    else:
        os.makedirs(folder)
    return folder


def _names(base):
    """The hostile paths to the planted file, relative to ``base`` (the folder a file's paths are read against)
    and absolute."""
    return {"outside": os.path.relpath(os.path.join(_ROOT[0], "outside"), base),
            "outside_abs": os.path.join(_ROOT[0], "outside")}


_ROOT = [None]


def _every_item(dataset):
    for i in range(len(dataset)):
        dataset[i]  # reads the image: what a training epoch does


def hold(read, folder, given_paths=()):
    """Run ``read()`` under the three watches; fail on anything but a return or an EdgeExportError."""
    with OpenWatch() as watch, Watchdog(BOUND_S) as dog:
        try:
            read()
        except EdgeExportError:
            pass
        except KeyboardInterrupt:
            if not dog.fired:
                raise
            pytest.fail("the reader ran past its bound of {} s".format(BOUND_S))
        except BaseException:
            pytest.fail("an exception escaped the reader:\n" + traceback.format_exc())
    outside = watch.outside(_ROOT[0], [folder] + list(given_paths))
    assert not outside, "the reader opened files outside the folder it was given: {}".format(outside)


@pytest.fixture(autouse=True)
def _root(ground):
    _ROOT[0] = ground["root"]


# ---- datasets -------------------------------------------------------------------------------------------------
@fuzz_settings()
@given(which=st.sampled_from(["Annotations/train_000000.xml", "Annotations/val_000000.xml",
                              "ImageSets/Main/train.txt"]), edits=text_edits(), split=st.sampled_from([None, "train"]))
def test_voc_xml_and_split_lists(ground, which, edits, split):
    from edgeexport.data.voc import VOCDetection
    folder = _fresh(ground, "voc", ground["voc"])
    path = os.path.join(folder, which)
    base = os.path.join(folder, "Annotations")
    open(path, "wb").write(apply_text_edits(open(path, "rb").read(), edits, _names(base)))
    hold(lambda: _every_item(VOCDetection(folder, split=split)), folder)


@fuzz_settings()
@given(edits=json_edits(COCO_SHAPE), reader=st.sampled_from(["train", "evaluate"]))
def test_coco_json(ground, edits, reader):
    """COCO JSON as training reads it (COCODetection, every image) and as evaluate reads a validation set
    (ValidationSet.load, every image): one schema, coco_eval.coco_problems."""
    from edgeexport.data.coco import COCODetection
    from edgeexport.device.check.coco_eval import ValidationSet
    from edgeexport.device.check.evaluate import read_image
    folder = _fresh(ground, "coco", ground["coco"])
    ann = os.path.join(folder, "annotations.json")
    open(ann, "w").write(dump_json(apply_json_edits(ground["coco_doc"], edits, _names(folder))))

    def evaluate():
        vset = ValidationSet.load(ann)
        for im in vset.images:
            read_image(vset.path(im))
        vset.class_map(["circle", "square"])
    hold(evaluate if reader == "evaluate" else lambda: _every_item(COCODetection(folder, ann)), folder)


@fuzz_settings()
@given(edits=text_edits())
def test_open_images_csv(ground, edits):
    from edgeexport.data.openimages import OpenImagesDetection
    folder = _fresh(ground, "oi", ground["oi"])
    open(os.path.join(folder, "sub-train-annotations-bbox.csv"), "wb").write(
        apply_text_edits(ground["oi_csv"], edits, _names(os.path.join(folder, "train"))))
    hold(lambda: _every_item(OpenImagesDetection(folder, "train")), folder)


# ---- what evaluate reads besides: DeepStream's results --------------------------------------------------------
@fuzz_settings()
@given(edits=json_edits([{"image_id": 1, "file_name": "im1.jpg", "category_id": 1, "category_name": "circle",
                          "score": 0.9, "bbox": [2, 3, 20, 10]}]))
def test_deepstream_results(ground, edits):
    from edgeexport.device.check.coco_eval import ValidationSet
    from edgeexport.device.check.eval_rows import DeepStreamResults
    folder = _fresh(ground, "results")
    path = os.path.join(folder, "results.json")
    open(path, "w").write(dump_json(apply_json_edits(ground["results_doc"], edits, _names(folder))))
    vset = ValidationSet(ground["coco_doc"], ground["coco"])

    def read():
        DeepStreamResults(path, ["circle", "square"]).detections(vset)
    hold(read, folder)


# ---- a bundle: model.json, infer_config.txt, labels.txt, the parity fixtures -----------------------------------
@pytest.fixture(scope="module")
def bundle_doc(ground):
    return json.load(open(os.path.join(ground["bundle"], "model.json")))


@fuzz_settings()
@given(data=st.data())
def test_model_json(ground, bundle_doc, data):
    from edgeexport.device.deepstream.bundle_check import load_bundle
    folder = _fresh(ground, "bundle", ground["bundle"])
    doc = apply_json_edits(bundle_doc, data.draw(json_edits(bundle_doc, max_edits=2)), _names(folder))
    open(os.path.join(folder, "model.json"), "w").write(dump_json(doc))

    def read():
        b = load_bundle(folder)
        b.meta.settings, b.meta.model.labels, b.infer_config_path
    hold(read, folder)


@fuzz_settings()
@given(which=st.sampled_from(["infer_config.txt", "labels.txt"]), edits=text_edits())
def test_infer_config_and_labels(ground, which, edits):
    from edgeexport.device.deepstream.bundle_check import load_bundle
    folder = _fresh(ground, "bundle", ground["bundle"])
    path = os.path.join(folder, which)
    open(path, "wb").write(apply_text_edits(open(path, "rb").read(), edits, _names(folder)))
    hold(lambda: load_bundle(folder), folder)


@fuzz_settings()
@given(which=st.sampled_from(["parity/inputs.npy", "parity/expected.npz"]), edits=text_edits())
def test_parity_fixtures(ground, which, edits):
    from edgeexport.device.bundle import FIXTURE_EXPECTED, FIXTURE_INPUTS, Fixtures
    folder = _fresh(ground, "bundle", ground["bundle"])
    path = os.path.join(folder, FIXTURE_INPUTS if which.endswith(".npy") else FIXTURE_EXPECTED)
    open(path, "wb").write(apply_text_edits(open(path, "rb").read(), edits, _names(folder)))
    hold(lambda: Fixtures.load(folder), folder)


# ---- what export and train read: label files, checkpoints -------------------------------------------------------
@fuzz_settings()
@given(edits=text_edits())
def test_labels_file(ground, edits):
    from edgeexport.export.cli import read_labels_file
    folder = _fresh(ground, "labels")
    path = os.path.join(folder, "labels.txt")
    open(path, "wb").write(apply_text_edits(b"circle\nsquare\ntriangle\n", edits, _names(folder)))
    hold(lambda: read_labels_file(path), folder)


@fuzz_settings(examples=max(5, int(os.environ.get("EDGEEXPORT_FUZZ_EXAMPLES", "25")) // 2))
@given(edits=json_edits({"arch": "a", "labels": ["a", "b"], "image_mean": [0.5, 0.5, 0.5],
                         "image_std": [0.5, 0.5, 0.5], "input_size": [320, 320], "reduced_tail": False},
                        max_edits=2))
def test_checkpoint_meta(ground, edits):
    """The checkpoint's own metadata (a dict inside model.pth), as export's load_model reads it."""
    import torch

    from edgeexport.model.checkpoint import load_model, read_checkpoint
    folder = _fresh(ground, "ckpt")
    obj = read_checkpoint(ground["checkpoint"])
    meta = apply_json_edits(obj["meta"], edits, _names(folder))
    path = os.path.join(folder, "model.pth")
    torch.save({"model": obj["model"], "meta": meta}, path)
    hold(lambda: load_model(path), folder)


@fuzz_settings(examples=max(5, int(os.environ.get("EDGEEXPORT_FUZZ_EXAMPLES", "25")) // 2))
@given(cut=st.integers(0, 10 ** 9), raw=st.binary(min_size=1, max_size=16), op=st.sampled_from(["cut", "splice",
                                                                                              "overwrite"]))
def test_checkpoint_bytes(ground, cut, raw, op):
    from edgeexport.model.checkpoint import load_model
    folder = _fresh(ground, "ckpt")
    data = open(ground["checkpoint"], "rb").read()
    k = cut % (len(data) + 1)
    data = {"cut": data[:k], "splice": data[:k] + raw + data[k:], "overwrite": data[:k] + raw + data[k + len(raw):]}[op]
    path = os.path.join(folder, "model.pth")
    open(path, "wb").write(data)
    hold(lambda: load_model(path), folder)
