"""Held-out mAP during training: the in-memory predictions as a COCO set, scored by the one COCOeval wrapper
evaluate uses (edgeexport/device/coco_eval.py), so training's numbers and evaluate's are the same computation."""
from ..device.coco_eval import ValidationSet, score


def coco_map(gts, dts, num_classes):
    """gts/dts: lists (one per image) of dicts with numpy ``boxes`` x1y1x2y2 and ``labels`` (dts: ``scores``).

    Returns {"map": mAP@[.5:.95], "map50": mAP@.5}.
    """
    images, anns, results = [], [], []
    for i, (gt, dt) in enumerate(zip(gts, dts)):
        images.append({"id": i, "file_name": str(i), "width": 1, "height": 1})
        for b, l in zip(gt["boxes"], gt["labels"]):
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(l),
                         "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h, "iscrowd": 0})
        for b, l, s in zip(dt["boxes"], dt["labels"], dt["scores"]):
            results.append({"image_id": i, "category_id": int(l), "score": float(s),
                            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
    if not anns:
        raise ValueError("coco_map needs at least one ground-truth box, got none")
    categories = [{"id": k, "name": str(k)} for k in range(1, num_classes + 1)]
    m = score(ValidationSet({"images": images, "annotations": anns, "categories": categories}, ""), results)
    return {"map": m["map"], "map50": m["map50"]}
