"""Held-out mAP during training: the in-memory predictions as a COCO set, scored by the one COCOeval wrapper
evaluate uses (edgeexport/device/check/coco_eval.py), so training's numbers and evaluate's are the same computation."""
import numpy as np

from ..device.check.coco_eval import ValidationSet, coco_annotation, score
from ..device.postprocess import Detections


def coco_map(gts, dts, num_classes):
    """gts/dts: lists (one per image) of dicts with numpy ``boxes`` x1y1x2y2 and ``labels`` (dts: ``scores``).

    Returns {"map": mAP@[.5:.95], "map50": mAP@.5}.
    """
    images, anns = [], []
    for i, gt in enumerate(gts):
        images.append({"id": i, "file_name": str(i), "width": 1, "height": 1})
        for b, l in zip(gt["boxes"], gt["labels"]):
            anns.append(coco_annotation(len(anns) + 1, i, l, b))
    if not anns:
        raise ValueError("coco_map needs at least one ground-truth box, got none")
    names = [str(k) for k in range(1, num_classes + 1)]
    vset = ValidationSet({"images": images, "annotations": anns,
                          "categories": [{"id": k + 1, "name": n} for k, n in enumerate(names)]}, "")
    # labels 1..K are torchvision's (0 = background); evaluate's rows give class indices 0..K-1
    results = vset.results({i: Detections(dt["boxes"], dt["scores"], np.asarray(dt["labels"]) - 1)
                            for i, dt in enumerate(dts)}, names)
    m = score(vset, results)
    return {"map": m["map"], "map50": m["map50"]}
