"""Checks every dataset applies to its annotations, and the skip-or-fail policy."""
import logging

import numpy as np

from ..device.errors import DatasetError

log = logging.getLogger(__name__)
BadAnnotationPolicy = ("skip", "fail")


class AnnotationIssue(object):
    def __init__(self, file, problem):
        self.file, self.problem = str(file), problem

    def __str__(self):
        return "{}: {}".format(self.file, self.problem)

    __repr__ = __str__


def check_boxes(file, boxes, names, width, height, label_to_index, tolerance=1.0):
    """Validate one image's boxes. Returns (good boxes [N,4], labels [N] in 1..K, list of AnnotationIssue).

    A box may poke ``tolerance`` px outside the image (labelling tools round); it is then clipped.
    """
    issues, good, labels = [], [], []
    for box, name in zip(boxes, names):
        x1, y1, x2, y2 = [float(v) for v in box]
        if name not in label_to_index:
            issues.append(AnnotationIssue(file, "unknown class {!r} (known: {})".format(
                name, ", ".join(sorted(label_to_index)))))
            continue
        if not all(np.isfinite([x1, y1, x2, y2])):
            issues.append(AnnotationIssue(file, "non-finite box {}".format([x1, y1, x2, y2])))
            continue
        if x1 < -tolerance or y1 < -tolerance or x2 > width + tolerance or y2 > height + tolerance:
            issues.append(AnnotationIssue(file, "box {} lies outside the {}x{} image".format(
                [round(v, 1) for v in (x1, y1, x2, y2)], width, height)))
            continue
        x1, y1 = max(x1, 0.0), max(y1, 0.0)
        x2, y2 = min(x2, float(width)), min(y2, float(height))
        if x2 - x1 < 1.0 or y2 - y1 < 1.0:
            issues.append(AnnotationIssue(file, "box {} has zero area".format(
                [round(v, 1) for v in (x1, y1, x2, y2)])))
            continue
        good.append([x1, y1, x2, y2])
        labels.append(label_to_index[name])
    return (np.asarray(good, np.float32).reshape(-1, 4), np.asarray(labels, np.int64), issues)


def apply_policy(issues, on_bad, dataset_name):
    """Log every issue; raise on the first batch of them when the policy is 'fail'."""
    if on_bad not in BadAnnotationPolicy:
        raise ValueError("on_bad must be one of {}, got {!r}".format(BadAnnotationPolicy, on_bad))
    if not issues:
        return
    for issue in issues[:20]:
        log.warning("%s: bad annotation: %s", dataset_name, issue)
    if len(issues) > 20:
        log.warning("%s: ... and %d more bad annotations", dataset_name, len(issues) - 20)
    if on_bad == "fail":
        raise DatasetError("{}: {} bad annotation(s), first: {}. Fix them or pass --on-bad-annotation skip".format(
            dataset_name, len(issues), issues[0]))


def _reason(e):
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else type(e).__name__


def read_rgb(path):
    """Read an image file as uint8 RGB HWC; DatasetError naming the file when it cannot be read."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))  # a writable copy: torch.from_numpy warns on read-only arrays
    except Exception as e:  # by design: whatever PIL cannot decode is not an image
        raise DatasetError("cannot read image {}: {}".format(path, _reason(e)))


def image_size(path):
    """(width, height) from the image file's header (annotations without sizes); DatasetError naming the file."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.size
    except Exception as e:  # by design: whatever PIL cannot open is not an image
        raise DatasetError("cannot read image {}: {}".format(path, _reason(e)))


# EXIF orientations (tag 0x0112) that show the stored image turned a quarter: width and height swap on display
QUARTER_TURNS = (5, 6, 7, 8)


def stored_size_issue(path, width, height):
    """None when the image file stores ``width`` x ``height`` pixels (the size its annotation gives), else what is
    wrong, for an AnnotationIssue. Every reader here takes the pixels as stored, EXIF orientation not applied
    (torchvision.io.decode_image and decode_jpeg: apply_exif_orientation=False by default; PIL's open does not
    transpose; nvJPEG reads no EXIF), as nvinfer's camera frames come; a phone photo annotated in a tool that showed
    it upright has boxes for pixels that are never trained on. A file that cannot be opened is left to the read,
    which names it."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112)
    except Exception:  # by design: whatever cannot be opened here is reported when it is read
        return None
    if (w, h) == (width, height):
        return None
    if (h, w) == (width, height) and orientation in QUARTER_TURNS:
        return ("annotated upright as {}x{}, but the file stores {}x{} pixels with EXIF orientation {} (turned on "
                "display only), and training reads the pixels as stored: turn the pixels upright to fit the boxes "
                "(exiftran -ai rotates a JPEG losslessly and clears the tag)".format(width, height, w, h, orientation))
    return "annotated as {}x{}, but the image is {}x{}: the boxes do not fit its pixels (resized after " \
           "labelling?)".format(width, height, w, h)


def class_counts(dataset):
    """Boxes per class (index 1..K) of a dataset, without decoding images where its annotations are at hand."""
    counts = np.zeros(len(dataset.labels) + 1, np.int64)
    items = getattr(dataset, "items", None)
    for i in range(len(dataset)):
        labels = items[i][2] if items is not None else dataset[i][1]["labels"]
        counts += np.bincount(np.asarray(labels, np.int64), minlength=len(counts))[:len(counts)]
    return counts[1:]


def summary(name, dataset):
    """Lines describing a dataset split: images, boxes, per-class counts and shares, bad annotations."""
    counts = class_counts(dataset)
    total = int(counts.sum())
    lines = ["{}: {} images, {} boxes ({:.1f} per image), {} bad annotation(s)".format(
        name, len(dataset), total, total / float(max(len(dataset), 1)), len(getattr(dataset, "issues", [])))]
    for label, c in zip(dataset.labels, counts):
        lines.append("  {:<20} {:>7} boxes  {:5.1f}%".format(label, int(c), 100.0 * c / max(total, 1)))
    return lines
