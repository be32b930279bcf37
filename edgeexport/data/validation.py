"""Any dataset as a validation set in COCO's format (edgeexport.device.check.coco_eval.ValidationSet): what `evaluate`
scores and what export --val-data puts into a bundle. Files the dataset already has are referenced (or copied into
the bundle); generated images (synthetic) are written as PNG. Host-side."""
import json
import os
import shutil

from ..device.check.coco_eval import ValidationSet, coco_annotation
from ..device.errors import DatasetError, UsageError


def to_validation_set(dataset, folder, max_images=None, copy=False, name="validation"):
    """``dataset``: one of edgeexport.data's (``.labels``, ``[i] -> (rgb, {"boxes", "labels" 1..K})``, file-backed
    ones with ``.items[i][0]`` the image path). Images go to ``folder/images`` when copied or generated, named
    ``images/...`` relative to ``folder`` (where annotations.json goes): the set reads from wherever it is moved."""
    n = len(dataset) if max_images is None else min(len(dataset), int(max_images))
    if n < 1:
        raise DatasetError("the validation set has no images")
    image_dir = os.path.join(folder, "images")
    files = getattr(dataset, "items", None)
    images, annotations = [], []
    for i in range(n):
        img, target = dataset[i]
        h, w = img.shape[:2]
        if files is not None:
            src = files[i][0]
            file_name = os.path.abspath(src)
            if copy:
                os.makedirs(image_dir, exist_ok=True)
                file_name = "images/{:06d}_{}".format(i, os.path.basename(src))
                shutil.copy2(src, os.path.join(folder, file_name))
        else:
            from .frames import opencv
            os.makedirs(image_dir, exist_ok=True)
            file_name = "images/{:06d}.png".format(i)
            if not opencv().imwrite(os.path.join(folder, file_name), img[..., ::-1]):
                raise DatasetError("cannot write {}".format(os.path.join(folder, file_name)))
        images.append({"id": i, "file_name": file_name, "width": int(w), "height": int(h)})
        for b, label in zip(target["boxes"], target["labels"]):
            annotations.append(coco_annotation(len(annotations) + 1, i, label, b))
    gt = {"images": images, "annotations": annotations,
          "categories": [{"id": k + 1, "name": label} for k, label in enumerate(dataset.labels)]}
    return ValidationSet(gt, folder, name)


def save_validation_set(vset, folder):
    """annotations.json beside the images: a set any COCO tool (and the device's evaluate) reads."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "annotations.json")
    from ..device.fileio import atomic_write_text
    atomic_write_text(path, json.dumps(vset.gt) + "\n")
    return path


def open_dataset(kind, data_path=None, labels=None, split=None, ann_file=None, synthetic_size=200, seed=0,
                 image_size=None, num_classes=3):
    """A host dataset by name: voc (``data_path`` = the VOC root, ``split`` from ImageSets/Main), coco
    (``ann_file``, images in ``data_path``), openimages (the downloader's folder, ``split`` default validation),
    synthetic (``synthetic_size`` images, seeded)."""
    from . import COCODetection, OpenImagesDetection, SyntheticShapes, VOCDetection
    if kind == "synthetic":
        return SyntheticShapes(synthetic_size, len(labels) if labels else num_classes, seed=seed,
                               image_size=image_size)
    if not data_path:
        raise UsageError("--dataset {} needs --data-path".format(kind))
    if kind == "voc":
        return VOCDetection(data_path, labels, split)
    if kind == "coco":
        if not ann_file:
            raise UsageError("--dataset coco needs the annotation file")
        return COCODetection(data_path, ann_file, labels)
    if kind == "openimages":
        return OpenImagesDetection(data_path, split or "validation", labels)
    raise UsageError("no dataset kind {!r}; available: coco, openimages, synthetic, voc".format(kind))
