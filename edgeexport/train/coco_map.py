"""COCO-style box mAP through faster-coco-eval (a maintained reimplementation of pycocotools' COCOeval)."""
import contextlib
import io

import numpy as np


def coco_map(gts, dts, num_classes):
    """gts/dts: lists (one per image) of dicts with numpy ``boxes`` x1y1x2y2 and ``labels`` (dts: ``scores``).

    Returns {"map": mAP@[.5:.95], "map50": mAP@.5}.
    """
    from faster_coco_eval import COCO, COCOeval_faster

    images, anns, dets = [], [], []
    for i, (gt, dt) in enumerate(zip(gts, dts)):
        images.append({"id": i, "width": 1, "height": 1})
        for b, l in zip(gt["boxes"], gt["labels"]):
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(l), "bbox": [float(b[0]), float(b[1]), w, h],
                         "area": w * h, "iscrowd": 0})
        for b, l, s in zip(dt["boxes"], dt["labels"], dt["scores"]):
            dets.append({"image_id": i, "category_id": int(l), "score": float(s),
                         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
    if not anns:
        raise ValueError("coco_map needs at least one ground-truth box, got none")
    if not dets:
        return {"map": 0.0, "map50": 0.0}
    gt_coco = COCO({"images": images, "annotations": anns,
                    "categories": [{"id": k} for k in range(1, num_classes + 1)]})
    with contextlib.redirect_stdout(io.StringIO()):
        dt_coco = gt_coco.loadRes(dets)
        ev = COCOeval_faster(gt_coco, dt_coco, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = np.asarray(ev.stats, dtype=float)
    return {"map": max(float(stats[0]), 0.0), "map50": max(float(stats[1]), 0.0)}
