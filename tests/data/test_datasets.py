import json
import os

import numpy as np
import pytest
from PIL import Image

from edgeexport.data import COCODetection, SyntheticShapes, VOCDetection
from edgeexport.device.errors import DatasetError


def test_synthetic_is_deterministic_and_boxes_are_exact():
    a = SyntheticShapes(5, num_classes=4, seed=3)
    b = SyntheticShapes(5, num_classes=4, seed=3)
    c = SyntheticShapes(5, num_classes=4, seed=4)
    img_a, t_a = a[2]
    img_b, t_b = b[2]
    assert np.array_equal(img_a, img_b) and np.array_equal(t_a["boxes"], t_b["boxes"])
    assert not np.array_equal(img_a, c[2][0])
    h, w = img_a.shape[:2]
    for i in range(5):
        img, t = a[i]
        assert len(t["boxes"]) >= 1 and set(t["labels"]) <= {1, 2, 3, 4}
        assert (t["boxes"][:, :2] >= 0).all() and (t["boxes"][:, 2] <= img.shape[1]).all()
        assert (t["boxes"][:, 3] <= img.shape[0]).all()


# In a subprocess: the pool forks, and a fork of the pytest process (whose libraries have threads of their own)
# could hang for reasons that are not prerender's.
PRERENDER = """
import os, sys, threading
import numpy as np
from edgeexport.data.synthetic import SyntheticShapes
from edgeexport.device.errors import DatasetError

class DiesAt70(SyntheticShapes):
    def _render(self, index):
        if index == 70:
            os._exit(9)  # as the OOM killer would end it
        return SyntheticShapes._render(self, index)

pooled = SyntheticShapes(100, seed=5, image_size=(64, 64))
pooled.lock = threading.Lock()  # unpicklable: the pool must pass indices, never the dataset and its cache
pooled.prerender(2)
serial = SyntheticShapes(100, seed=5, image_size=(64, 64))
for i in (0, 37, 99):
    assert np.array_equal(pooled[i][0], serial[i][0]) and np.array_equal(pooled[i][1]["boxes"], serial[i][1]["boxes"])
try:
    DiesAt70(100, seed=5, image_size=(64, 64)).prerender(2)
except DatasetError as e:
    print("refused:", e)
"""


def test_prerender_in_processes_equals_serial_never_pickles_the_dataset_and_a_dead_worker_is_an_error():
    from ..conftest import run_cli
    r = run_cli(["-c", PRERENDER], timeout=120)
    assert r.returncode == 0, r.stderr
    assert "refused: rendering the synthetic set in 2 processes: a worker died" in r.stdout, r.stdout


def test_synthetic_box_encloses_the_drawn_pixels_tightly():
    from edgeexport.data.synthetic import draw_shape
    for shape in ("circle", "square", "triangle", "star", "cross", "hexagon", "diamond", "ring"):
        img = np.zeros((200, 200, 3), np.uint8)
        box = draw_shape(img, shape, 100.0, 90.0, 50.0, 0.3, (255, 255, 255))
        ys, xs = np.nonzero(img[..., 0] > 127)
        # exact up to the anti-aliased edge pixel
        assert abs(xs.min() - box[0]) <= 2 and abs(xs.max() + 1 - box[2]) <= 2, shape
        assert abs(ys.min() - box[1]) <= 2 and abs(ys.max() + 1 - box[3]) <= 2, shape


def _voc(root, objects, image=True, name="img1", size=(64, 48)):
    os.makedirs(os.path.join(root, "Annotations"), exist_ok=True)
    os.makedirs(os.path.join(root, "JPEGImages"), exist_ok=True)
    if image:
        Image.new("RGB", size).save(os.path.join(root, "JPEGImages", name + ".jpg"))
    objs = "".join("<object><name>{}</name><difficult>0</difficult><bndbox><xmin>{}</xmin><ymin>{}</ymin>"
                   "<xmax>{}</xmax><ymax>{}</ymax></bndbox></object>".format(n, *b) for n, b in objects)
    with open(os.path.join(root, "Annotations", name + ".xml"), "w") as f:
        f.write("<annotation><filename>{}.jpg</filename><size><width>{}</width><height>{}</height></size>{}"
                "</annotation>".format(name, size[0], size[1], objs))


def test_voc_reads_boxes_and_discovers_labels(tmp_path):
    _voc(str(tmp_path), [("dog", (1, 2, 30, 40)), ("cat", (10, 10, 20, 20))])
    ds = VOCDetection(str(tmp_path))
    assert ds.labels == ["cat", "dog"]
    img, t = ds[0]
    assert img.shape == (48, 64, 3)
    assert t["boxes"].tolist() == [[1, 2, 30, 40], [10, 10, 20, 20]] and t["labels"].tolist() == [2, 1]


@pytest.mark.parametrize("bad,msg", [
    (("dog", (1, 2, 90, 40)), "outside"),
    (("dog", (10, 10, 10, 30)), "zero area"),
    (("horse", (1, 1, 5, 5)), "unknown class"),
])
def test_voc_bad_annotations_fail_or_skip_with_file_name(tmp_path, bad, msg):
    _voc(str(tmp_path), [("dog", (1, 2, 30, 40)), bad])
    _voc(str(tmp_path), [("dog", (2, 2, 9, 9))], name="img2")
    with pytest.raises(DatasetError, match=msg) as e:
        VOCDetection(str(tmp_path), labels=["dog"], on_bad="fail")
    assert "img1.xml" in str(e.value)
    ds = VOCDetection(str(tmp_path), labels=["dog"], on_bad="skip")
    assert len(ds.issues) == 1 and msg in str(ds.issues[0])
    assert sum(len(ds[i][1]["boxes"]) for i in range(len(ds))) == 2  # the good boxes are kept


def test_voc_missing_image(tmp_path):
    _voc(str(tmp_path), [("dog", (1, 2, 30, 40))], image=False)
    _voc(str(tmp_path), [("dog", (1, 2, 30, 40))], name="ok")
    with pytest.raises(DatasetError, match="img1.*not found"):
        VOCDetection(str(tmp_path), on_bad="fail")
    assert len(VOCDetection(str(tmp_path), on_bad="skip")) == 1


def test_voc_reads_nothing_outside_its_folders_and_survives_impossible_sizes(tmp_path):
    """Ids of a split list, and <filename>, are file names inside Annotations/ and JPEGImages/ (symlinks
    resolved): '../' reads nothing outside; an infinite or absurd <size> falls back to the image's header."""
    root = str(tmp_path / "voc")
    _voc(root, [("dog", (1, 2, 30, 40))])
    secret = tmp_path / "secret.xml"
    secret.write_text("<annotation><filename>../../secret.jpg</filename></annotation>")
    os.makedirs(os.path.join(root, "ImageSets", "Main"))
    with open(os.path.join(root, "ImageSets", "Main", "val.txt"), "w") as f:
        f.write("img1\n../../secret\n")
    with pytest.raises(DatasetError, match="not a file name in Annotations"):
        VOCDetection(root, split="val", on_bad="fail")
    assert [os.path.basename(p) for p, _, _ in VOCDetection(root, split="val", on_bad="skip").items] == ["img1.jpg"]
    # <filename> naming a file outside JPEGImages/ (here through a symlink) is not read
    Image.new("RGB", (64, 48)).save(str(tmp_path / "outside.jpg"))
    os.symlink(str(tmp_path / "outside.jpg"), os.path.join(root, "JPEGImages", "link.jpg"))
    xml = os.path.join(root, "Annotations", "img1.xml")
    text = open(xml).read()
    open(xml, "w").write(text.replace("<filename>img1.jpg</filename>", "<filename>link.jpg</filename>")
                         .replace("<width>64</width>", "<width>inf</width>"))
    os.unlink(os.path.join(root, "JPEGImages", "img1.jpg"))
    with pytest.raises(DatasetError, match="not found"):
        VOCDetection(root, on_bad="fail")


def test_coco_reads_and_checks(tmp_path):
    Image.new("RGB", (50, 40)).save(str(tmp_path / "a.jpg"))
    ann = {"images": [{"id": 7, "file_name": "a.jpg", "width": 50, "height": 40},
                      {"id": 8, "file_name": "missing.jpg", "width": 50, "height": 40}],
           "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [5, 5, 10, 20], "iscrowd": 0},
                           {"id": 2, "image_id": 7, "category_id": 9, "bbox": [5, 5, 10, 20], "iscrowd": 0}],
           "categories": [{"id": 3, "name": "car"}, {"id": 5, "name": "bus"}]}
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    with pytest.raises(DatasetError, match="missing.jpg|names no category"):
        COCODetection(str(tmp_path), str(tmp_path / "ann.json"))
    ds = COCODetection(str(tmp_path), str(tmp_path / "ann.json"), on_bad="skip")
    assert ds.labels == ["car", "bus"] and len(ds) == 1
    assert ds[0][1]["boxes"].tolist() == [[5, 5, 15, 25]] and ds[0][1]["labels"].tolist() == [1]
    assert len(ds.issues) == 2
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(DatasetError, match="not COCO"):
        COCODetection(str(tmp_path), str(tmp_path / "bad.json"))


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.update(annotations=5), "annotations must be a list"),
    (lambda a: a.update(images={"a": 1}), "images must be a list"),
    (lambda a: a["annotations"][0].update(image_id=[7]), r"annotations\[0\]\): expected \{image_id"),
    (lambda a: a["images"][0].update(file_name=5), r"images\[0\]\): expected \{id, file_name"),
    (lambda a: a["images"][0].update(id=None), r"images\[0\]\): expected \{id, file_name"),
    (lambda a: a["annotations"][0].update(bbox=[1, 2, float("nan"), 4]), r"bbox must be \[x, y, width, height\]"),
    (lambda a: a["categories"].append({"id": 3, "name": "bus"}), "category id 3 appears twice"),
    (lambda a: a["images"][0].update(file_name="../outside.jpg"), "not a path inside"),
    (lambda a: a["images"][0].update(file_name="/etc/hostname"), "not a path inside"),
])
def test_coco_json_of_the_wrong_shape_is_one_dataset_error(tmp_path, edit, message):
    """Read as untrusted: every field of the wrong type is an annotation issue or "not COCO JSON", never a
    traceback, and no file outside the image folder is read."""
    from edgeexport.data.coco import COCODetection
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (50, 40)).save(str(images / "a.jpg"))
    Image.new("RGB", (50, 40)).save(str(tmp_path / "outside.jpg"))
    ann = {"images": [{"id": 7, "file_name": "a.jpg", "width": 50, "height": 40}],
           "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [5, 5, 10, 20], "iscrowd": 0}],
           "categories": [{"id": 3, "name": "car"}]}
    edit(ann)
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    with pytest.raises(DatasetError, match=message):
        COCODetection(str(images), str(tmp_path / "ann.json"))


def test_coco_sizes_that_are_not_finite_come_from_the_image_header(tmp_path):
    from edgeexport.data.coco import COCODetection
    Image.new("RGB", (50, 40)).save(str(tmp_path / "a.jpg"))
    ann = {"images": [{"id": 7, "file_name": "a.jpg", "width": float("nan"), "height": "40"}],
           "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [5, 5, 40, 30], "iscrowd": 0}],
           "categories": [{"id": 3, "name": "car"}]}
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    ds = COCODetection(str(tmp_path), str(tmp_path / "ann.json"))
    assert ds.items[0][1].tolist() == [[5, 5, 45, 35]]
    ann["annotations"][0]["bbox"] = [5, 5, 60, 30]  # outside the header's 50 x 40: caught, not trained on
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    with pytest.raises(DatasetError, match="outside"):
        COCODetection(str(tmp_path), str(tmp_path / "ann.json"))


def _turned(path, size, orientation):
    """An image stored ``size`` (W, H) with an EXIF orientation tag, as a phone writes a photo held sideways."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", size).save(path, exif=exif)


def test_voc_annotated_upright_on_a_sideways_stored_photo_is_named_with_the_fix(tmp_path):
    """Stored 64x48 with EXIF orientation 6: a tool that showed it upright wrote <size> 48x64 and boxes for that
    view; the readers take the stored pixels, so the boxes would land on the wrong ones. Annotated as stored, it is
    fine (the tag is not ours to apply: nvinfer's frames carry none)."""
    _voc(str(tmp_path), [("dog", (1, 2, 30, 40))], name="upright", size=(48, 64))
    _voc(str(tmp_path), [("dog", (1, 2, 30, 40))], name="as_stored", size=(64, 48))
    _turned(str(tmp_path / "JPEGImages" / "upright.jpg"), (64, 48), 6)
    _turned(str(tmp_path / "JPEGImages" / "as_stored.jpg"), (64, 48), 6)
    with pytest.raises(DatasetError, match=r"upright.xml: annotated upright as 48x64, but the file stores 64x48 "
                                           r"pixels with EXIF orientation 6 .*exiftran -ai"):
        VOCDetection(str(tmp_path))
    ds = VOCDetection(str(tmp_path), on_bad="skip")
    assert len(ds) == 1 and ds.items[0][0].endswith("as_stored.jpg") and ds[0][0].shape == (48, 64, 3)


def test_a_size_that_is_not_the_images_is_an_annotation_issue(tmp_path):
    """<size> 128x96 for a 64x48 image (resized after labelling): its boxes are for other pixels."""
    _voc(str(tmp_path), [("dog", (1, 2, 100, 80))], size=(128, 96))
    Image.new("RGB", (64, 48)).save(str(tmp_path / "JPEGImages" / "img1.jpg"))
    with pytest.raises(DatasetError, match=r"annotated as 128x96, but the image is 64x48"):
        VOCDetection(str(tmp_path))
    from edgeexport.data.coco import COCODetection
    _turned(str(tmp_path / "a.jpg"), (50, 40), 8)
    ann = {"images": [{"id": 7, "file_name": "a.jpg", "width": 40, "height": 50}],
           "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [5, 5, 20, 30], "iscrowd": 0}],
           "categories": [{"id": 3, "name": "car"}]}
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    with pytest.raises(DatasetError, match=r"a.jpg\): annotated upright as 40x50, .* EXIF orientation 8"):
        COCODetection(str(tmp_path), str(tmp_path / "ann.json"))


def test_a_voc_split_list_that_is_not_text_is_one_dataset_error(tmp_path):
    """Found by the reader fuzzer: bytes that are not UTF-8 in ImageSets/Main/<split>.txt were a traceback."""
    from edgeexport.data.make_voc import write_voc
    from edgeexport.data.voc import VOCDetection
    write_voc(str(tmp_path), train=1, val=1, size=(64, 48), natural=False)
    (tmp_path / "ImageSets" / "Main" / "train.txt").write_bytes(b"\x80\xff train_000000\n")
    with pytest.raises(DatasetError, match="cannot read the split list"):
        VOCDetection(str(tmp_path), split="train")
