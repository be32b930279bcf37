"""Pascal VOC folders: ``Annotations/*.xml`` + ``JPEGImages/`` (what labelImg, CVAT and Open Images
downloaders write), optionally restricted by ``ImageSets/Main/<split>.txt``."""
import os
import xml.etree.ElementTree as ET

from ..device.errors import DatasetError
from ..device.fileio import file_inside
from .common import AnnotationIssue, apply_policy, check_boxes, image_size, read_rgb, stored_size_issue

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


class VOCDetection(object):
    def __init__(self, root, labels=None, split=None, on_bad="fail", keep_difficult=False):
        ann_dir = os.path.join(root, "Annotations")
        if not os.path.isdir(ann_dir):
            raise DatasetError("{} is not a VOC folder: expected {}/, got nothing there".format(root, ann_dir))
        if split:
            list_file = os.path.join(root, "ImageSets", "Main", split + ".txt")
            if not os.path.isfile(list_file):
                raise DatasetError("split file {} not found".format(list_file))
            try:
                with open(list_file, "rb") as f:
                    ids = [line.split()[0] for line in f.read().decode("utf-8").splitlines() if line.strip()]
            except Exception as e:  # by design: a list we cannot read as UTF-8 text is not a split list
                raise DatasetError("cannot read the split list {}: {}".format(
                    list_file, getattr(e, "strerror", None) or e))
        else:
            ids = sorted(os.path.splitext(n)[0] for n in os.listdir(ann_dir) if n.endswith(".xml"))
        if not ids:
            raise DatasetError("{} has no annotations".format(ann_dir))
        parsed, issues = [], []
        for image_id in ids:
            xml_path = file_inside(ann_dir, image_id, ".xml")
            if xml_path is None:  # a split list naming ../x or a/b: nothing outside Annotations/ is read
                issues.append(AnnotationIssue(os.path.join(root, "ImageSets", "Main", (split or "") + ".txt"),
                                              "id {!r} is not a file name in Annotations/".format(image_id)))
                continue
            try:
                parsed.append((image_id, xml_path, ET.parse(xml_path).getroot()))
            except Exception as e:  # by design: whatever does not parse as XML is an unreadable annotation
                issues.append(AnnotationIssue(xml_path, "unreadable XML ({})".format(e)))
        if labels is None:  # discovered, in sorted order, so that it is stable across runs
            labels = sorted({o.findtext("name", "").strip() for _, _, r in parsed for o in r.iter("object")} - {""})
        self.labels = list(labels)
        index = {name: i + 1 for i, name in enumerate(self.labels)}
        self.items = []
        for image_id, xml_path, root_el in parsed:
            fname = root_el.findtext("filename", "").strip()
            image_path = self._find_image(root, image_id, fname)
            if image_path is None:
                issues.append(AnnotationIssue(xml_path, "image file {!r} not found in JPEGImages/".format(
                    fname or image_id)))
                continue
            try:
                width = int(float(root_el.findtext("size/width")))
                height = int(float(root_el.findtext("size/height")))
            except (TypeError, ValueError, OverflowError):  # missing, not a number, inf
                width = height = None
            if width is not None and not (0 < width <= 100000 and 0 < height <= 100000):
                width = height = None  # a size no image has: read the image's own header instead
            wrong = stored_size_issue(image_path, width, height) if width else None
            if wrong:
                issues.append(AnnotationIssue(xml_path, wrong))
                continue
            boxes, names = [], []
            for obj in root_el.iter("object"):
                if not keep_difficult and obj.findtext("difficult", "0").strip() == "1":
                    continue
                bb = obj.find("bndbox")
                try:
                    boxes.append([float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
                except (AttributeError, TypeError, ValueError):
                    issues.append(AnnotationIssue(xml_path, "object without a numeric bndbox"))
                    continue
                names.append(obj.findtext("name", "").strip())
            if not width or not height:  # the <size> element is optional in practice: read the image's header
                width, height = image_size(image_path)
            good, lab, bad = check_boxes(xml_path, boxes, names, width, height, index)
            issues.extend(bad)
            if bad and on_bad == "skip" and len(good) == 0:
                continue
            self.items.append((image_path, good, lab))
        self.issues = issues
        apply_policy(issues, on_bad, "VOC {}".format(root))
        if not self.items:
            raise DatasetError("{}: no usable images after checking annotations".format(root))

    @staticmethod
    def _find_image(root, image_id, fname):
        folder = os.path.join(root, "JPEGImages")
        candidates = [fname] if fname else []
        candidates += [image_id + ext for ext in IMAGE_EXTS]
        for c in candidates:
            p = file_inside(folder, c)  # <filename>../../x</filename> reads nothing outside JPEGImages/
            if p is not None and os.path.isfile(p):
                return p
        return None

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, boxes, labels = self.items[i]
        return read_rgb(path), {"boxes": boxes.copy(), "labels": labels.copy(), "image_id": i}
