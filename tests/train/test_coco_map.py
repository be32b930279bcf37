"""Training's held-out mAP goes through evaluate's COCOeval wrapper: values a hand count can confirm."""
import numpy as np
import pytest

from edgeexport.train.coco_map import coco_map


def _gt(boxes, labels):
    return {"boxes": np.asarray(boxes, dtype=np.float32), "labels": np.asarray(labels)}


def _dt(boxes, labels, scores):
    d = _gt(boxes, labels)
    d["scores"] = np.asarray(scores, dtype=np.float32)
    return d


def test_perfect_detections_score_one():
    gts = [_gt([[10, 10, 50, 50], [60, 60, 90, 100]], [1, 2]), _gt([[0, 0, 30, 30]], [1])]
    dts = [_dt(g["boxes"], g["labels"], np.ones(len(g["labels"]))) for g in gts]
    m = coco_map(gts, dts, 2)
    assert m["map"] == pytest.approx(1.0) and m["map50"] == pytest.approx(1.0)


def test_a_loose_box_counts_at_iou_half_only():
    # IoU of [10,10,50,50] and [10,10,50,60] is 0.8: a hit at thresholds 0.50..0.80 (7 of 10), a miss above
    gts = [_gt([[10, 10, 50, 50]], [1])]
    m = coco_map(gts, [_dt([[10, 10, 50, 60]], [1], [0.9])], 1)
    assert m["map50"] == pytest.approx(1.0)
    assert m["map"] == pytest.approx(0.7, abs=1e-6)


def test_wrong_class_and_no_detections_score_zero():
    gts = [_gt([[10, 10, 50, 50]], [1])]
    assert coco_map(gts, [_dt([[10, 10, 50, 50]], [2], [0.9])], 2)["map50"] == 0.0
    assert coco_map(gts, [_dt(np.zeros((0, 4)), [], [])], 2) == {"map": 0.0, "map50": 0.0}


def test_no_ground_truth_is_refused():
    with pytest.raises(ValueError):
        coco_map([_gt(np.zeros((0, 4)), [])], [_dt(np.zeros((0, 4)), [], [])], 1)
