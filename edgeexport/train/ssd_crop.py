"""SSD's augmentation drawn as numbers: the IoU crop and the horizontal flip of torchvision's ``ssdlite`` preset,
decided from the boxes and the image size alone, so that whoever holds the pixels (a loader worker, the GPU) applies
them in one pass.

The crop follows torchvision.transforms.v2.RandomIoUCrop.make_params (SSD's sampling): pick a minimum IoU among
0, 0.1, 0.3, 0.5, 0.7, 0.9 or "no crop", then up to 40 trials of a crop of 0.3-1.0 of each side with an aspect
ratio within 0.5-2, accepted when some box's centre falls inside it and one of those boxes overlaps the crop by the
minimum IoU; the boxes kept are those whose centre falls inside. The 40 trials are drawn at once and the first that
passes is taken: the same distribution as drawing them one by one, for a fraction of the Python (one by one it cost
1.3 ms an image on CPU2, as much as decoding the JPEG).
"""
import numpy as np

IOU_OPTIONS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, None)
FAST_PRESETS = ("ssdlite", "hflip", "none")  # "ssd" adds photometric distortion and zoom-out: torchvision's v2 path


def iou_crop(rng, w, h, boxes, min_scale=0.3, max_scale=1.0, min_ar=0.5, max_ar=2.0, trials=40):
    """(left, top, width, height, kept box mask) or None for "no crop"."""
    if len(boxes) == 0:
        return None
    boxes = np.asarray(boxes, np.float64)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while True:
        min_iou = IOU_OPTIONS[int(rng.integers(len(IOU_OPTIONS)))]
        if min_iou is None:
            return None
        scale = rng.uniform(min_scale, max_scale, (trials, 2))
        frac = rng.random((trials, 2))
        cw, ch = (w * scale[:, 0]).astype(np.int64), (h * scale[:, 1]).astype(np.int64)
        ok = (cw > 0) & (ch > 0)
        ratio = cw / np.maximum(ch, 1).astype(np.float64)
        ok &= (min_ar <= ratio) & (ratio <= max_ar)
        left, top = ((w - cw) * frac[:, 0]).astype(np.int64), ((h - ch) * frac[:, 1]).astype(np.int64)
        l, t, r, b = left[:, None], top[:, None], (left + cw)[:, None], (top + ch)[:, None]
        inside = (l < cx) & (cx < r) & (t < cy) & (cy < b)  # [trials, boxes]
        inter = (np.clip(np.minimum(boxes[:, 2], r) - np.maximum(boxes[:, 0], l), 0, None) *
                 np.clip(np.minimum(boxes[:, 3], b) - np.maximum(boxes[:, 1], t), 0, None))
        iou = inter / (area + (cw * ch)[:, None] - inter)
        ok &= np.where(inside, iou, -1.0).max(axis=1) >= min_iou
        if ok.any():
            k = int(np.argmax(ok))
            return int(left[k]), int(top[k]), int(cw[k]), int(ch[k]), inside[k]


def draw(rng, w, h, boxes, labels, preset, grid=None):
    """One sample's augmentation for a ``w`` x ``h`` image: ((left, top, width, height) of the crop, flip, boxes in
    the crop's pixels (flipped with it), labels). Boxes are clamped to the crop as torchvision's crop clamps them;
    removing the degenerate ones is left to the caller, after the resize (where SanitizeBoundingBoxes sits).
    ``grid`` (--decode-scale reduced): crop -> the crop the pixels will really be cut to, to which the boxes are
    then cut; it draws nothing, so the same seed draws the same crop and flip with it and without."""
    boxes, labels = np.asarray(boxes, np.float32).reshape(-1, 4).copy(), np.asarray(labels, np.int64).copy()
    crop = iou_crop(rng, w, h, boxes) if preset == "ssdlite" else None
    left, top, cw, ch = 0, 0, w, h
    if crop is not None:
        left, top, cw, ch, inside = crop
        boxes, labels = boxes[inside], labels[inside]
    if grid is not None:
        left, top, cw, ch = grid((left, top, cw, ch))
    if crop is not None or grid is not None:
        boxes[:, 0::2] = np.clip(boxes[:, 0::2] - left, 0, cw)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2] - top, 0, ch)
    flip = preset != "none" and bool(rng.random() < 0.5)
    if flip:
        boxes[:, [0, 2]] = cw - boxes[:, [2, 0]]
    return (left, top, cw, ch), flip, boxes, labels


def scale_and_sanitize(boxes, labels, crop, size):
    """Boxes of a ``crop`` (l, t, w, h) scaled to the network's ``size`` (H, W), and the degenerate ones dropped as
    torchvision's SanitizeBoundingBoxes does (each side and the area at least 1 output pixel). Scaled boxes are
    clamped to the image first: a box touching the crop's far edge can come out of the float32 scaling an ulp
    beyond it (ch * float32(H / ch) > H), and SanitizeBoundingBoxes drops such a box as outside the image; in
    torchvision's v2 pipeline that loses a real object now and then, here it keeps it."""
    _, _, cw, ch = crop
    boxes = boxes * np.array([size[1] / float(cw), size[0] / float(ch)] * 2, np.float32)
    np.clip(boxes[:, 0::2], 0, size[1], out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, size[0], out=boxes[:, 1::2])
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (bw >= 1) & (bh >= 1) & (bw * bh >= 1)
    return boxes[keep], labels[keep]
