import numpy as np
import pytest
import torch
from torchvision.ops import batched_nms, nms

from edgeexport.device.check.compare import compare_outputs, match_detections
from edgeexport.device.meta import DetectionSettings
from edgeexport.device.postprocess import (CLUSTER_NMS, CLUSTER_NONE, ClassAttrs, Detections, FrameScale, cluster,
                                           greedy_nms, iou_matrix, parse_boxes_scores, parse_top_class, scale_to_frame,
                                           to_frame, to_top_class)


def nms_cluster(d, pre, iou, topk=-1, post_threshold=0.0):
    return cluster(d, [ClassAttrs(p, post_threshold, iou, topk) for p in pre], CLUSTER_NMS)

S = DetectionSettings(0.3, 0.55, 100)


def _random_outputs(rng, n=500, k=4):
    c = rng.random((n, 2)) * 0.8 + 0.1
    wh = rng.random((n, 2)) * 0.3 + 0.02
    boxes = np.concatenate([c - wh / 2, c + wh / 2], 1).clip(0, 1).astype(np.float32)
    logits = rng.normal(0, 2.5, (n, k + 1))
    scores = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True))[:, 1:].astype(np.float32)
    return boxes, scores


def test_nms_matches_torchvision_batched_nms():
    rng = np.random.default_rng(0)
    boxes, scores = _random_outputs(rng)
    cand = parse_boxes_scores(boxes, scores, 320, 320, [0.3] * 4)
    ours = nms_cluster(cand, [0.3] * 4, 0.5)
    keep = batched_nms(torch.from_numpy(cand.boxes).double(), torch.from_numpy(cand.scores).double(),
                       torch.from_numpy(cand.classes), 0.5).numpy()
    assert len(keep) == len(ours)
    assert sorted(map(tuple, np.round(cand.boxes[keep], 3))) == sorted(map(tuple, np.round(ours.boxes, 3)))


def test_parser_reference_thresholds_classes_and_bad_values():
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.6, 0.6], [np.nan, 0, 1, 1]], np.float32)
    scores = np.array([[0.9, 0.2, 0.8], [0.5, 0.7, np.inf], [0.99, 0.99, 0.99]], np.float32)
    d = parse_boxes_scores(boxes, scores, 100, 200, [0.6, 0.6, 0.6], num_classes=2)
    got = sorted(zip(d.classes.tolist(), d.scores.tolist()))
    assert [c for c, _ in got] == [0, 1] and [s for _, s in got] == pytest.approx([0.9, 0.7])
    assert d.boxes[d.classes == 0][0].tolist() == pytest.approx([10, 20, 50, 100])
    t = parse_top_class(boxes, [0.9, 0.7, 0.99], [0, 5, 1], 100, 200, [0.6], num_classes=3)
    assert t.classes.tolist() == [0]  # class 5 is beyond num_classes; the NaN box is skipped


def test_cluster_topk_and_post_threshold():
    b = np.array([[0, 0, 10, 10], [0, 0, 10, 10.5], [50, 50, 60, 60], [80, 80, 90, 90]], np.float32)
    d = Detections(b, [0.9, 0.8, 0.7, 0.6], [1, 1, 1, 1])
    out = nms_cluster(d, [0.5, 0.5], 0.5)
    assert out.scores.tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert nms_cluster(d, [0.5, 0.5], 0.5, topk=2).scores.tolist() == pytest.approx([0.9, 0.7])
    assert nms_cluster(d, [0.5, 0.5], 0.5, post_threshold=0.65).scores.tolist() == pytest.approx([0.9, 0.7])
    assert nms_cluster(d, [0.75, 0.75], 0.5).scores.tolist() == pytest.approx([0.9])


def test_scale_to_frame_and_iou():
    d = scale_to_frame(Detections([[10, 20, 30, 40]], [1], [0]), 100, 100, 1920, 1080)
    assert d.boxes[0].tolist() == pytest.approx([192, 216, 576, 432])
    assert iou_matrix([[0, 0, 10, 10]], [[5, 0, 15, 10]])[0, 0] == pytest.approx(1 / 3)


@pytest.mark.parametrize("n, iou", [(0, 0.5), (1, 0.5), (2000, 0.3), (2000, 0.6)])
def test_greedy_nms_keeps_what_the_full_iou_matrix_and_torchvision_keep(n, iou):
    rng = np.random.default_rng(n)
    centre = rng.random((n, 2)) * 60  # crowded: thousands of boxes over a 70-pixel square, as untrained anchors
    size = rng.random((n, 2)) * 20 + 2
    boxes = np.concatenate([centre, centre + size], 1).astype(np.float32)
    ious = iou_matrix(boxes, boxes)  # the greedy loop over the whole matrix, as cluster() once ran it
    suppressed, full = np.zeros(n, bool), []
    for i in range(n):
        if not suppressed[i]:
            full.append(i)
            suppressed |= ious[i] > iou
    kept = greedy_nms(boxes, iou)
    assert kept.dtype == np.int64 and kept.tolist() == full
    scores = torch.linspace(1, 0, n + 1)[:n]  # already in confidence order
    assert kept.tolist() == nms(torch.from_numpy(boxes), scores, iou).tolist()
    if n == 2000:
        assert 1 < len(kept) < n


def test_greedy_nms_keeps_a_box_whose_iou_equals_the_threshold():
    boxes = [[0, 0, 10, 10], [5, 0, 15, 10]]  # IoU 1/3
    assert greedy_nms(boxes, 1 / 3.0).tolist() == [0, 1] and greedy_nms(boxes, 0.3).tolist() == [0]


def test_topk_zero_keeps_nothing_and_topk_is_per_class_in_class_order():
    """filterTopKOutputs cuts each class separately (nvdsinfer_context_impl_output_parsing.cpp:175-187, 273)."""
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]], np.float32)
    d = Detections(b, [0.5, 0.9, 0.8, 0.7], [1, 1, 0, 0])
    out = cluster(d, [ClassAttrs(0.1, 0, 0.5, 1), ClassAttrs(0.1, 0, 0.5, 1)])
    assert out.classes.tolist() == [0, 1] and out.scores.tolist() == pytest.approx([0.8, 0.9])
    assert len(cluster(d, [ClassAttrs(0.1, 0, 0.5, 0)] * 2)) == 0
    mixed = cluster(d, [ClassAttrs(0.1, 0, 0.5, 0), ClassAttrs(0.1, 0, 0.5, -1)])
    assert mixed.classes.tolist() == [1, 1]


def test_cluster_mode_4_thresholds_and_cuts_per_class_but_does_not_suppress():
    """fillUnclusteredOutput: pre-cluster threshold (preClusteringThreshold runs in every mode) and topk per
    class; no NMS and no post-cluster threshold."""
    b = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [5, 5, 9, 9]], np.float32)
    d = Detections(b, [0.3, 0.9, 0.8, 0.6], [0, 0, 1, 2])
    attrs = [ClassAttrs(0.5, 0.95, 0.1, 5), ClassAttrs(0.5, 0.95, 0.1, 5), ClassAttrs(0.7, 0, 0.1, 5)]
    out = cluster(d, attrs, CLUSTER_NONE)
    assert out.classes.tolist() == [0, 1] and out.scores.tolist() == pytest.approx([0.9, 0.8])
    assert len(cluster(d, attrs, CLUSTER_NMS)) == 0  # mode 2 applies the post-cluster threshold 0.95


def test_per_class_nms_iou_post_threshold_and_classes_beyond_the_config():
    b = np.array([[0, 0, 10, 10], [0, 0, 10, 12], [0, 0, 10, 10], [0, 0, 10, 12], [0, 0, 5, 5]], np.float32)
    d = Detections(b, [0.9, 0.8, 0.9, 0.8, 0.99], [0, 0, 1, 1, 7])
    out = cluster(d, [ClassAttrs(0.1, 0, 0.9, -1), ClassAttrs(0.1, 0.85, 0.5, -1)])
    # class 0: IoU 0.83 <= 0.9 keeps both; class 1: suppressed by IoU 0.5; class 7 is beyond num-detected-classes
    assert out.classes.tolist() == [0, 0, 1] and out.scores.tolist() == pytest.approx([0.9, 0.8, 0.9])


def test_boxes_outside_the_network_input_are_not_clipped():
    """nvinfer clips only its own DetectNet parser's boxes (output_parsing.cpp:119-135), not a custom parser's."""
    d = Detections([[-20, -10, 340, 330]], [0.9], [0])
    out = cluster(d, [ClassAttrs(0.1, 0, 0.5, -1)])
    assert out.boxes[0].tolist() == [-20, -10, 340, 330]
    assert to_frame(out, FrameScale.stretch(320, 320, 640, 640)).boxes[0].tolist() == [-40, -20, 680, 660]


def test_to_frame_padding_offsets_and_detection_filters():
    """attach_metadata_detector: (left - offset) / ratio, then detected-min/max and ROI filters in frame pixels."""
    scale = FrameScale(0.5, 0.5, 10, 20, frame_height=400)
    d = Detections([[20, 30, 60, 80], [10, 20, 14, 24], [20, 30, 60, 200]], [0.9, 0.8, 0.7], [0, 0, 0])
    assert to_frame(d, scale).boxes[0].tolist() == pytest.approx([20, 20, 100, 120])
    a = ClassAttrs(0.1, 0, 0.5, -1, min_w=10, min_h=10, roi_bottom=50)
    out = to_frame(d, scale, [a])
    assert out.scores.tolist() == pytest.approx([0.9])  # 8x8 too small; the third reaches past 400 - 50
    assert to_frame(d, scale, [ClassAttrs(max_w=50)]).scores.tolist() == pytest.approx([0.8])


def test_compare_passes_identical_and_fails_perturbed():
    rng = np.random.default_rng(1)
    pairs = [_random_outputs(rng) for _ in range(3)]
    ref = {"boxes": np.stack([p[0] for p in pairs]), "scores": np.stack([p[1] for p in pairs])}
    same = compare_outputs(ref, {k: v.copy() for k, v in ref.items()}, 320, 320, "fp32", S)
    assert same.ok and same.matched > 0 and same.missing == same.extra == 0
    bad = {k: v.copy() for k, v in ref.items()}
    bad["boxes"][0, :, :2] += 0.01
    rep = compare_outputs(ref, bad, 320, 320, "fp32", S)
    assert not rep.ok and not rep.raw_ok and "FAIL" in rep.table()
    fp16_like = {k: v + rng.normal(0, 1e-3, v.shape).astype(np.float32) for k, v in ref.items()}
    assert compare_outputs(ref, fp16_like, 320, 320, "fp16", S).ok
    assert not compare_outputs(ref, fp16_like, 320, 320, "fp32", S).raw_ok


def test_nothing_compared_is_a_failure_not_a_pass():
    rng = np.random.default_rng(3)
    b, s = _random_outputs(rng)
    ref = {"boxes": b[None], "scores": s[None]}
    rep = compare_outputs(ref, {k: v.copy() for k, v in ref.items()}, 320, 320, "fp32", S, threshold=1.0)
    assert rep.raw_ok and rep.compared == 0 and not rep.ok
    assert "nothing compared" in rep.table() and "FAIL" in rep.table()


def test_compare_top_class_layout():
    rng = np.random.default_rng(2)
    b, s = _random_outputs(rng)
    ref = {"boxes": b[None], "scores": s[None]}
    rep = compare_outputs(ref, to_top_class(ref), 320, 320, "fp32", S)
    assert rep.ok and rep.raw["top_class"]["max_abs"] == 0.0


def test_match_detections_requires_same_class():
    a = Detections([[0, 0, 10, 10]], [0.9], [0])
    b = Detections([[0, 0, 10, 10]], [0.9], [1])
    pairs, missing, extra = match_detections(a, b, 0.5)
    assert not pairs and missing == [0] and extra == [0]


def _one_box(score, box=(0.2, 0.2, 0.6, 0.6)):
    """A batch of one image whose only scored anchor is ``box`` at ``score`` (class 0 of 2)."""
    boxes = np.tile(np.asarray(box, np.float32), (4, 1))[None]
    scores = np.zeros((1, 4, 2), np.float32)
    scores[0, 0, 0] = score
    return {"boxes": boxes, "scores": scores}


def test_int8_qdq_forgives_a_detection_just_across_the_threshold_and_nothing_more():
    # measured on a QAT Small's fixtures: 0.415 against 0.392 around a threshold of 0.40 (compare.py)
    settings = DetectionSettings(0.4, 0.5, 100)
    near = compare_outputs(_one_box(0.415), _one_box(0.392), 320, 320, "int8-qdq", settings)
    assert near.borderline == 1 and near.missing == 0 and "1 borderline" in near.table()
    # the borderline detection is not a match either: with nothing else compared, the check fails
    assert near.compared == 0 and not near.ok
    # the same pair without the margin (int8: the calibrator's tolerances) is a missing detection
    assert compare_outputs(_one_box(0.415), _one_box(0.392), 320, 320, "int8", settings).missing == 1
    # far across the threshold, or far above it on the reference side, it is missing
    for ref_score, got_score in ((0.415, 0.30), (0.60, 0.392)):
        r = compare_outputs(_one_box(ref_score), _one_box(got_score), 320, 320, "int8-qdq", settings)
        assert r.missing == 1 and r.borderline == 0
    # and the other way round: an extra just above the threshold, the reference just below
    r = compare_outputs(_one_box(0.392), _one_box(0.415), 320, 320, "int8-qdq", settings)
    assert r.extra == 0 and r.borderline == 1
