"""NumPy reference of what happens after the network in DeepStream: the parser's candidate list, nvinfer's
clustering (cluster-mode 2 and 4, per-class attributes), and its mapping of boxes back into the frame.

Device-side (Python 3.6, numpy only). The C++ parser in jetson/parser/ is tested against ``parse_boxes_scores``.
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
# GPUs, where it is 2000): see edgeexport.device.tensorrt.cuda_memory.nms_candidate_cap for the source.
NMS_CANDIDATE_CAP = 5000
# EfficientNMS_TRT's four outputs, in the plugin's order (NVIDIA/TensorRT plugin/efficientNMSPlugin/README.md,
# "Outputs"); the "efficient_nms" layout of edgeexport.device.meta.OUTPUT_NAMES
EFFICIENT_NMS_OUTPUTS = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")


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
        keep.extend(idx[greedy_nms(boxes[anchor[idx]], iou_threshold)])
    keep = sorted(keep, key=lambda i: (-s[i], i))[:max_output_boxes]
    m = int(max_output_boxes)
    out_b, out_s, out_c = np.zeros((m, 4), np.float32), np.zeros(m, np.float32), np.zeros(m, np.int32)
    out_b[:len(keep)] = boxes[anchor[keep]]
    out_s[:len(keep)] = s[keep]
    out_c[:len(keep)] = cls[keep]
    return np.array([len(keep)], np.int32), out_b, out_s, out_c


def efficient_nms_outputs(boxes, scores, score_threshold, iou_threshold, max_output_boxes,
                          candidate_cap=NMS_CANDIDATE_CAP):
    """The EfficientNMS_TRT node's four outputs for one frame, by name, from its NumPy reference: what ONNX Runtime,
    which has no such operator, is given in the plugin's place."""
    return dict(zip(EFFICIENT_NMS_OUTPUTS, efficient_nms_reference(boxes, scores, score_threshold, iou_threshold,
                                                                   max_output_boxes, candidate_cap)))


def parse_outputs(layout, outputs, net_w, net_h, thresholds, num_classes):
    """The NumPy reference of the C++ parser for ``layout`` on one frame's outputs ({name: array}, no batch dim)."""
    if layout == "boxes_scores":
        return parse_boxes_scores(outputs["boxes"], outputs["scores"], net_w, net_h, thresholds, num_classes)
    if layout == "top_class":
        return parse_top_class(outputs["boxes"], outputs["top_score"], outputs["top_class"], net_w, net_h,
                               thresholds, num_classes)
    return parse_efficient_nms(outputs["num_detections"], outputs["detection_boxes"], outputs["detection_scores"],
                               outputs["detection_classes"], net_w, net_h, thresholds, num_classes)


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


def greedy_nms(boxes, iou_threshold):
    """The positions in ``boxes`` (sorted by confidence, best first) that greedy NMS keeps: a box is kept iff its
    IoU with every box kept before it is <= ``iou_threshold`` (nvinfer's clustering, EfficientNMS_TRT's and
    torchvision's NMS alike). One IoU row per kept box, against the boxes after it:
    the README API example's untrained SSDLite320 puts all 3,234 anchors of each class over the 0.2 threshold, and
    the full matrix of them took 0.13 s a class and frame (21 of that example's 33 s on the 2-core CPU machine)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    suppressed = np.zeros(len(boxes), bool)
    chosen = []
    for i in range(len(boxes)):
        if not suppressed[i]:
            chosen.append(i)
            suppressed[i + 1:] |= iou_matrix(boxes[i:i + 1], boxes[i + 1:])[0] > iou_threshold
    return np.asarray(chosen, np.int64)


class ClassAttrs(object):
    """One class's ``[class-attrs-*]`` values as nvinfer holds them, with gst-nvinfer's defaults
    (gstnvinfer_property_parser.h:20-27 @6.0.1: pre-cluster 0.2, post-cluster 0.0, NMS IoU 0.3, topk -1 = all)
    and its detection filters (0 = off), which apply in frame pixels when the objects are attached."""

    # "threshold", deprecated, is the pre-cluster threshold (gstnvinfer_property_parser.cpp:97-108 @6.0.1); keys
    # apply in file order, so the later of the two wins, as there
    KEYS = {"pre-cluster-threshold": "pre", "threshold": "pre", "post-cluster-threshold": "post",
            "nms-iou-threshold": "iou",
            "topk": "topk", "detected-min-w": "min_w", "detected-min-h": "min_h", "detected-max-w": "max_w",
            "detected-max-h": "max_h", "roi-top-offset": "roi_top", "roi-bottom-offset": "roi_bottom"}
    INTEGER_KEYS = ("topk", "detected-min-w", "detected-min-h", "detected-max-w", "detected-max-h",
                    "roi-top-offset", "roi-bottom-offset")

    def __init__(self, pre=0.2, post=0.0, iou=0.3, topk=-1, min_w=0, min_h=0, max_w=0, max_h=0, roi_top=0,
                 roi_bottom=0):
        # nvinfer keeps thresholds and confidences as float: compare in float32 as it does
        self.pre, self.post, self.iou = np.float32(pre), np.float32(post), float(iou)
        self.topk = int(topk)
        self.min_w, self.min_h, self.max_w, self.max_h = int(min_w), int(min_h), int(max_w), int(max_h)
        self.roi_top, self.roi_bottom = int(roi_top), int(roi_bottom)

    @classmethod
    def from_settings(cls, settings):
        """What export's ``[class-attrs-all]`` says (a DetectionSettings)."""
        return cls(settings.pre_cluster_threshold, settings.post_cluster_threshold, settings.nms_iou_threshold,
                   settings.topk)

    def copy(self):
        other = ClassAttrs.__new__(ClassAttrs)
        other.__dict__.update(self.__dict__)
        return other


CLUSTER_NMS, CLUSTER_NONE = 2, 4  # nvinfer's cluster-mode values (NvDsInferClusterMode)


def _top_k(order, scores, topk):
    """nvinfer's filterTopKOutputs: stable sort by confidence (descending), keep the first topk; topk < 0 keeps all,
    topk = 0 keeps none (nvdsinfer_context_impl_output_parsing.cpp:175-187 @6.0.1)."""
    order = order[np.argsort(-scores[order], kind="mergesort")]  # mergesort is stable (numpy 1.13 has no "stable")
    return order if topk < 0 else order[:topk]


def cluster(dets, attrs, cluster_mode=CLUSTER_NMS):
    """nvinfer's post-processing of a custom parser's candidates (network pixels), class attributes per class
    (``attrs[c]``, one ClassAttrs per num-detected-classes). Source: DeepStream 6.0.1
    sources/libs/nvdsinfer/nvdsinfer_context_impl_output_parsing.cpp, the same in 6.3:

    - preClusteringThreshold (:154-169), in every mode: drop classes >= num-detected-classes and confidences below
      the class's pre-cluster threshold;
    - cluster-mode 2, clusterAndFillDetectionOutputNMS (:236-275): per class in class order, stable sort by
      confidence, greedy NMS keeping a box whose IoU with every kept one is <= the class's nms-iou-threshold, keep
      confidence > post-cluster threshold, then the class's topk;
    - cluster-mode 4, fillUnclusteredOutput (:451-482): per class in class order, the class's topk, nothing else.

    No clipping: nvinfer clips only in its own DetectNet parser (:119-135), never a custom parser's boxes.
    Returns Detections ordered by class, then as kept."""
    num_classes = len(attrs)
    scores = dets.scores.astype(np.float32)
    pre = np.asarray([a.pre for a in attrs], np.float32)
    valid = (dets.classes >= 0) & (dets.classes < num_classes)
    cls = np.where(valid, dets.classes, 0)
    keep = valid & ~(scores < pre[cls])
    kept = []
    for c in range(num_classes):
        a = attrs[c]
        idx = np.nonzero(keep & (dets.classes == c))[0]
        if not len(idx):
            continue
        if cluster_mode == CLUSTER_NMS:
            idx = idx[np.argsort(-scores[idx], kind="mergesort")]
            idx = idx[greedy_nms(dets.boxes[idx], a.iou)]
            idx = idx[scores[idx] > a.post]
        kept.append(_top_k(idx, scores, a.topk))
    sel = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    return Detections(dets.boxes[sel], dets.scores[sel], dets.classes[sel])


class FrameScale(object):
    """How nvinfer scaled one frame into the network input (gstnvinfer.cpp get_converted_buffer): the ratios
    network/source and the padding offsets, plus the frame's height for the ROI filters."""

    def __init__(self, ratio_x, ratio_y, offset_left=0, offset_top=0, frame_height=0):
        self.ratio_x, self.ratio_y = float(ratio_x), float(ratio_y)
        self.offset_left, self.offset_top = int(offset_left), int(offset_top)
        self.frame_height = int(frame_height)

    @classmethod
    def stretch(cls, net_w, net_h, frame_w, frame_h):
        """maintain-aspect-ratio=0: the frame, rounded down to even size as nvinfer crops it, stretched to the
        network input."""
        return cls(net_w / float(int(frame_w) & ~1), net_h / float(int(frame_h) & ~1), 0, 0, frame_h)


def to_frame(dets, scale, attrs=None, clamp_top_left=False):
    """nvinfer's attach_metadata_detector (gstnvinfer_meta_utils.cpp:58-82 @6.0.1): boxes from network pixels to
    frame pixels, ``left = (left - offset_left) / ratio_x``, ``width /= ratio_x``, then the class's detection
    filters in frame pixels (detected-min/max-w/h, roi-top/bottom-offset) when ``attrs`` is given.
    ``clamp_top_left``: DeepStream 6.3 and later set a negative top or left to 0 before the filters, width and
    height unchanged (gstnvinfer_meta_utils.cpp:84-88 @6.3; absent in 6.2 and before)."""
    b = dets.boxes.astype(np.float64)
    left = (b[:, 0] - scale.offset_left) / scale.ratio_x
    top = (b[:, 1] - scale.offset_top) / scale.ratio_y
    width = (b[:, 2] - b[:, 0]) / scale.ratio_x
    height = (b[:, 3] - b[:, 1]) / scale.ratio_y
    if clamp_top_left:
        top, left = np.maximum(top, 0.0), np.maximum(left, 0.0)
    ok = np.ones(len(dets), bool)
    if attrs is not None:
        for i, c in enumerate(dets.classes):
            a = attrs[int(c)]
            ok[i] = not (width[i] < a.min_w or height[i] < a.min_h or (a.max_w > 0 and width[i] > a.max_w) or
                         (a.max_h > 0 and height[i] > a.max_h) or top[i] < a.roi_top or
                         top[i] + height[i] > scale.frame_height - a.roi_bottom)
    boxes = np.stack([left, top, left + width, top + height], 1)[ok]
    return Detections(boxes, dets.scores[ok], dets.classes[ok])


def scale_to_frame(dets, net_w, net_h, frame_w, frame_h):
    """Boxes from network pixels to a frame stretched into the network (maintain-aspect-ratio=0, no filters)."""
    return to_frame(dets, FrameScale.stretch(net_w, net_h, frame_w, frame_h))


def to_top_class(outputs):
    """{"boxes", "scores"} -> the "top_class" layout {"boxes", "top_score", "top_class"} (what the graph computes)."""
    scores = np.asarray(outputs["scores"], np.float32)
    return {"boxes": outputs["boxes"], "top_score": scores.max(-1), "top_class": scores.argmax(-1).astype(np.float32)}


def detect(outputs, i, net_w, net_h, num_classes, pre_threshold, iou_threshold, topk=-1):
    """Image ``i`` of a batch of graph outputs -> parser candidates -> nvinfer clustering, for any layout (the
    EfficientNMS_TRT layout runs in cluster-mode 4: the plugin has clustered, nvinfer applies only topk)."""
    attrs = [ClassAttrs(pre_threshold, 0.0, iou_threshold, topk) for _ in range(num_classes)]
    layout = "efficient_nms" if "detection_boxes" in outputs else "boxes_scores" if "scores" in outputs \
        else "top_class"
    cand = parse_outputs(layout, {name: v[i] for name, v in outputs.items()}, net_w, net_h,
                         [pre_threshold] * num_classes, num_classes)
    return cluster(cand, attrs, CLUSTER_NONE if layout == "efficient_nms" else CLUSTER_NMS)
