"""NumPy reference of what happens after the network in DeepStream: the parser's candidate list and
nvinfer's cluster-mode=2 (per-class NMS), plus the inverse of its stretch resize.

Device-side (Python 3.6, numpy only). The C++ parser in edgeexport/device/parser/ is tested against ``parse_boxes_scores``.
"""
import numpy as np


class Detections(object):
    """Detections of one image: ``boxes`` [M, 4] x1y1x2y2 (pixels of whatever frame they refer to),
    ``scores`` [M], ``classes`` [M] int 0..K-1 (index into labels)."""

    def __init__(self, boxes, scores, classes):
        self.boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        self.scores = np.asarray(scores, np.float32).reshape(-1)
        self.classes = np.asarray(classes, np.int64).reshape(-1)

    def __len__(self):
        return len(self.scores)

    def to_list(self, labels=None):
        out = []
        for b, s, c in zip(self.boxes, self.scores, self.classes):
            d = {"box": [round(float(v), 2) for v in b], "score": round(float(s), 5), "class_id": int(c)}
            if labels is not None:
                d["label"] = labels[int(c)]
            out.append(d)
        return out


def parse_boxes_scores(boxes, scores, net_w, net_h, thresholds, num_classes=None):
    """What the C++ ``NvDsInferParseEdgeExport`` returns for one frame, as arrays.

    ``boxes`` [N, 4] normalised x1y1x2y2, ``scores`` [N, K]. For every anchor and class whose score reaches
    that class's pre-cluster threshold: one candidate in network pixels. NaN or infinite values are skipped.
    Classes at or beyond ``num_classes`` (num-detected-classes) are ignored.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32)
    k = scores.shape[1] if num_classes is None else min(int(num_classes), scores.shape[1])
    thr = np.asarray([thresholds[min(c, len(thresholds) - 1)] for c in range(k)], np.float32)
    with np.errstate(invalid="ignore"):
        hit = np.isfinite(scores[:, :k]) & (scores[:, :k] >= thr[None, :])
    anchor, cls = np.nonzero(hit)
    px = boxes[anchor] * np.asarray([net_w, net_h, net_w, net_h], np.float32)
    ok = np.all(np.isfinite(px), axis=1)
    return Detections(px[ok], scores[anchor, cls][ok], cls[ok])


def parse_top_class(boxes, top_score, top_class, net_w, net_h, thresholds, num_classes):
    """The "top_class" layout: one candidate per anchor at most (its best class)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    score = np.asarray(top_score, np.float32).reshape(-1)
    cls_f = np.asarray(top_class, np.float32).reshape(-1)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(score) & np.isfinite(cls_f) & (cls_f >= 0) & (cls_f < num_classes)
    cls = np.where(valid, cls_f, 0).astype(np.int64)
    thr = np.asarray(thresholds, np.float32)[np.minimum(cls, len(thresholds) - 1)]
    keep = valid & (score >= thr)
    px = boxes[keep] * np.asarray([net_w, net_h, net_w, net_h], np.float32)
    ok = np.all(np.isfinite(px), axis=1)
    return Detections(px[ok], score[keep][ok], cls[keep][ok])


def parse_efficient_nms(num_detections, boxes, scores, classes, net_w, net_h, thresholds, num_classes):
    """The "efficient_nms" layout (EfficientNMS_TRT outputs of one frame): the first num_detections rows."""
    n = int(np.clip(np.asarray(num_detections).reshape(-1)[0], 0, len(scores)))
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)[:n]
    scores = np.asarray(scores, np.float32).reshape(-1)[:n]
    cls = np.asarray(classes, np.int64).reshape(-1)[:n]
    valid = (cls >= 0) & (cls < num_classes) & np.isfinite(scores)
    thr = np.asarray(thresholds, np.float32)[np.clip(cls, 0, len(thresholds) - 1)]
    keep = valid & (scores >= thr) & np.all(np.isfinite(boxes), axis=1)
    px = boxes[keep] * np.asarray([net_w, net_h, net_w, net_h], np.float32)
    return Detections(px, scores[keep], cls[keep])


# EfficientNMS_TRT's pre-NMS candidate cap where a thread block has 64K registers (all but Nano/TX1/TX2-class
# GPUs, where it is 2000): see edgeexport.device.trt.cuda_memory.nms_candidate_cap for the source.
NMS_CANDIDATE_CAP = 5000


def efficient_nms_reference(boxes, scores, score_threshold, iou_threshold, max_output_boxes,
                            candidate_cap=NMS_CANDIDATE_CAP):
    """NumPy stand-in for TensorRT's EfficientNMS_TRT plugin (its documented algorithm) on one frame:
    drop scores below the threshold, sort all (anchor, class) pairs by score, per-class NMS (suppress IoU >
    threshold), keep the best ``max_output_boxes``. Returns the plugin's four outputs for one frame:
    num_detections int32 [1], detection_boxes [M, 4], detection_scores [M], detection_classes int32 [M]."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32)
    anchor, cls = np.nonzero(scores >= score_threshold)
    s = scores[anchor, cls]
    order = np.argsort(-s, kind="mergesort")[:int(candidate_cap)]  # the plugin keeps the best candidate_cap
    anchor, cls, s = anchor[order], cls[order], s[order]
    keep = []
    for c in np.unique(cls):
        idx = np.nonzero(cls == c)[0]
        ious = iou_matrix(boxes[anchor[idx]], boxes[anchor[idx]])
        suppressed = np.zeros(len(idx), bool)
        for i in range(len(idx)):
            if not suppressed[i]:
                keep.append(idx[i])
                suppressed |= ious[i] > iou_threshold
    keep = sorted(keep, key=lambda i: (-s[i], i))[:max_output_boxes]
    m = int(max_output_boxes)
    out_b, out_s, out_c = np.zeros((m, 4), np.float32), np.zeros(m, np.float32), np.zeros(m, np.int32)
    out_b[:len(keep)] = boxes[anchor[keep]]
    out_s[:len(keep)] = s[keep]
    out_c[:len(keep)] = cls[keep]
    return np.array([len(keep)], np.int32), out_b, out_s, out_c


def iou_matrix(a, b):
    """IoU of every box of ``a`` [M, 4] with every box of ``b`` [P, 4] (x1y1x2y2, no +1)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms_cluster(dets, pre_thresholds, iou_threshold, topk=-1, post_threshold=0.0, net_w=None, net_h=None):
    """nvinfer's cluster-mode=2 on a parser's candidates: drop scores below the class's pre-cluster threshold,
    then per class: stable sort by score, greedy NMS (suppress IoU > threshold), keep score > post threshold,
    keep the top ``topk`` (all when topk <= 0). Boxes are first clipped to the network input as nvinfer does.
    Returns Detections ordered by class, then score.
    """
    boxes = dets.boxes.copy()
    if net_w is not None:
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, net_w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, net_h)
    out_b, out_s, out_c = [], [], []
    for c in np.unique(dets.classes):
        pre = pre_thresholds[min(int(c), len(pre_thresholds) - 1)]
        idx = np.nonzero((dets.classes == c) & (dets.scores >= pre))[0]
        if not len(idx):
            continue
        # mergesort is stable; kind="stable" needs numpy 1.15 and JetPack 4.6 has 1.13
        idx = idx[np.argsort(-dets.scores[idx], kind="mergesort")]
        ious = iou_matrix(boxes[idx], boxes[idx])
        suppressed = np.zeros(len(idx), bool)
        kept = []
        for i in range(len(idx)):
            if suppressed[i]:
                continue
            kept.append(i)
            suppressed |= ious[i] > iou_threshold
        kept = [i for i in kept if dets.scores[idx[i]] > post_threshold]
        if topk is not None and topk > 0:
            kept = kept[:topk]
        sel = idx[kept]
        out_b.append(boxes[sel])
        out_s.append(dets.scores[sel])
        out_c.append(dets.classes[sel])
    if not out_b:
        return Detections(np.zeros((0, 4)), [], [])
    return Detections(np.concatenate(out_b), np.concatenate(out_s), np.concatenate(out_c))


def scale_to_frame(dets, net_w, net_h, frame_w, frame_h):
    """Map boxes from network pixels to frame pixels, as nvinfer does for maintain-aspect-ratio=0 (a stretch)."""
    s = np.asarray([frame_w / float(net_w), frame_h / float(net_h)] * 2, np.float32)
    return Detections(dets.boxes * s, dets.scores, dets.classes)


def to_top_class(outputs):
    """{"boxes", "scores"} -> the "top_class" layout {"boxes", "top_score", "top_class"} (what the graph computes)."""
    scores = np.asarray(outputs["scores"], np.float32)
    return {"boxes": outputs["boxes"], "top_score": scores.max(-1), "top_class": scores.argmax(-1).astype(np.float32)}


def detect(outputs, i, net_w, net_h, num_classes, pre_threshold, iou_threshold, topk=-1):
    """Image ``i`` of a batch of graph outputs -> parser candidates -> nvinfer clustering, for either layout."""
    thr = [pre_threshold] * num_classes
    if "detection_boxes" in outputs:  # the plugin has clustered already (cluster-mode=4)
        return parse_efficient_nms(outputs["num_detections"][i], outputs["detection_boxes"][i],
                                   outputs["detection_scores"][i], outputs["detection_classes"][i], net_w, net_h,
                                   thr, num_classes)
    if "scores" in outputs:
        cand = parse_boxes_scores(outputs["boxes"][i], outputs["scores"][i], net_w, net_h, thr, num_classes)
    else:
        cand = parse_top_class(outputs["boxes"][i], outputs["top_score"][i], outputs["top_class"][i], net_w, net_h,
                               thr, num_classes)
    return nms_cluster(cand, thr, iou_threshold, topk, net_w=net_w, net_h=net_h)
