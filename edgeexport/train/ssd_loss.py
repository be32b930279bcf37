"""torchvision's SSD training loss, computed for the whole batch at once on the GPU.

torchvision's SSD matches anchors, encodes boxes and mines hard negatives image by image in Python
(torchvision/models/detection/ssd.py: SSD.forward's matching loop, SSD.compute_loss); at batch 256 that loop, not
the network, bounds a GPU step. Here the same rules run as tensor operations over the batch:

- matching (SSDMatcher): every anchor takes the ground-truth box of highest IoU when it is >= ``iou_thresh``;
  then every ground-truth box claims its own best anchor, later boxes winning a shared anchor (the order in which
  torchvision's index assignment writes);
- box encoding (BoxCoder.encode_single, weights 10, 10, 5, 5) and smooth L1 over the matched anchors;
- classification: cross-entropy everywhere, kept for the positives and, per image, the ``neg_to_pos_ratio`` x
  positives hardest negatives (ranked by a double sort, as torchvision does);
- both sums divided by the batch's number of positives (at least 1).

Images without boxes contribute no positives and no negatives, as in torchvision. tests/train/test_ssd_loss.py
holds loss and gradients equal to torchvision's to 1e-5 on random batches.
"""
import torch
import torch.nn.functional as F

BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)

# True while dynamo traces: torch.compiler.is_compiling, public from torch 2.3 (the torch.compiler API reference lists
# it from 2.3 on), and setup.cfg admits 2.2; before, torch/_dynamo/__init__.py exported the same flag (from
# .external_utils import is_compiling)
_is_compiling = getattr(torch.compiler, "is_compiling", None)
if _is_compiling is None:
    import torch._dynamo
    _is_compiling = torch._dynamo.is_compiling

BOX_PADDING = 8


def pad_targets(targets, device=None, multiple=BOX_PADDING):
    """A list of {"boxes" [Mi, 4], "labels" [Mi]} -> boxes [B, M, 4], labels [B, M] (0 in padding), valid [B, M],
    M the most boxes of any image rounded up to ``multiple``. Rounded, because a compiled step (--compile) is
    compiled anew for each new shape it is given (tests/train/test_ssd_loss.py counts it): batches whose most boxes
    vary between 1 and 8 share one shape. (The recompile first seen on the H200 had another cause, fixed in
    SSDTrainStep.anchors.) Padding is never valid, so it changes no loss."""
    m = max([len(t["boxes"]) for t in targets] + [1])
    m = -(-m // multiple) * multiple
    b = len(targets)
    boxes = torch.zeros((b, m, 4), dtype=torch.float32)
    labels = torch.zeros((b, m), dtype=torch.int64)
    valid = torch.zeros((b, m), dtype=torch.bool)
    for i, t in enumerate(targets):
        n = len(t["boxes"])
        if n:
            boxes[i, :n] = torch.as_tensor(t["boxes"], dtype=torch.float32)
            labels[i, :n] = torch.as_tensor(t["labels"], dtype=torch.int64)
            valid[i, :n] = True
    if device is not None:
        boxes, labels, valid = boxes.to(device), labels.to(device), valid.to(device)
    return boxes, labels, valid


def box_iou(boxes, anchors):
    """IoU of boxes [B, M, 4] with anchors [A, 4] -> [B, M, A] (torchvision.ops.box_iou's arithmetic)."""
    area_b = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    area_a = (anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])
    lt = torch.max(boxes[..., None, :2], anchors[None, None, :, :2])
    rb = torch.min(boxes[..., None, 2:], anchors[None, None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_b[..., None] + area_a[None, None, :] - inter)


def match(anchors, boxes, valid, iou_thresh=0.5):
    """[B, A] index of the matched ground-truth box per anchor, -1 for none (torchvision's SSDMatcher)."""
    iou = box_iou(boxes, anchors).masked_fill(~valid[..., None], -1.0)
    best_iou, matches = iou.max(dim=1)
    matches = matches.masked_fill(best_iou < iou_thresh, -1)
    # each real box claims its best anchor; where several claim one, the last box's index wins
    best_anchor = iou.argmax(dim=2)  # [B, M]
    claim = torch.arange(boxes.shape[1], device=boxes.device).expand_as(best_anchor).masked_fill(~valid, -1)
    forced = torch.full_like(matches, -1).scatter_reduce(1, best_anchor, claim, reduce="amax", include_self=True)
    return torch.where(forced >= 0, forced, matches)


def encode(gt, anchors, weights=BOX_WEIGHTS):
    """torchvision's BoxCoder.encode_single for matching shapes [..., 4]."""
    wx, wy, ww, wh = weights
    aw, ah = anchors[..., 2] - anchors[..., 0], anchors[..., 3] - anchors[..., 1]
    ax, ay = anchors[..., 0] + 0.5 * aw, anchors[..., 1] + 0.5 * ah
    gw, gh = gt[..., 2] - gt[..., 0], gt[..., 3] - gt[..., 1]
    gx, gy = gt[..., 0] + 0.5 * gw, gt[..., 1] + 0.5 * gh
    return torch.stack([wx * (gx - ax) / aw, wy * (gy - ay) / ah, ww * torch.log(gw / aw), wh * torch.log(gh / ah)],
                       -1)


def ssd_loss(cls_logits, bbox_regression, anchors, boxes, labels, valid, iou_thresh=0.5, neg_to_pos_ratio=3):
    """{"bbox_regression", "classification"} for head outputs [B, A, C] and [B, A, 4], anchors [A, 4] (one input
    size for the batch), padded targets (pad_targets)."""
    matches = match(anchors, boxes, valid, iou_thresh)
    positive = matches >= 0
    idx = matches.clamp(min=0)
    anchors_b = anchors[None].float().expand(len(boxes), -1, -1)
    # unmatched anchors encode themselves (a zero target, masked out below): never a padded zero-size box
    matched_boxes = torch.where(positive[..., None], torch.gather(boxes, 1, idx[..., None].expand(-1, -1, 4)).float(),
                                anchors_b)
    n = positive.sum().clamp(min=1).float()
    target = encode(matched_boxes, anchors_b)
    reg = F.smooth_l1_loss(bbox_regression.float(), target, reduction="none").sum(-1)
    bbox_loss = (reg * positive).sum()
    cls_targets = torch.where(positive, torch.gather(labels, 1, idx), torch.zeros_like(idx))
    c = cls_logits.shape[-1]
    ce = F.cross_entropy(cls_logits.float().reshape(-1, c), cls_targets.reshape(-1), reduction="none").view_as(
        cls_targets)
    negative_loss = ce.masked_fill(positive, -float("inf"))
    order = negative_loss.sort(1, descending=True)[1]
    rank = order.sort(1)[1]
    hard_negative = rank < neg_to_pos_ratio * positive.sum(1, keepdim=True)
    cls_loss = (ce * positive).sum() + (ce * hard_negative).sum()
    return {"bbox_regression": bbox_loss / n, "classification": cls_loss / n}


def default_boxes(wh_pairs, steps, clip, grid_sizes, image_size, dtype, device):
    """The anchors [A, 4] (x1, y1, x2, y2 in pixels) that a torchvision DefaultBoxGenerator gives one image of
    ``image_size`` (H, W) whose feature maps are ``grid_sizes``, with the features' ``dtype``; made on ``device``
    from its first op. ``wh_pairs``: its ``_wh_pairs`` as lists (float32 values; lists, because a compiled graph
    cannot read a tensor's values), ``steps`` and ``clip`` its own.

    torchvision's own (anchor_utils.py, DefaultBoxGenerator._grid_default_boxes and forward) builds them on the CPU
    and then moves them. Under torch.compile's reduce-overhead mode (CUDA graphs) inductor's post-grad passes move
    CPU constructors such as its arange to the GPU, and left a torch.cat of a CUDA and a CPU tensor that it could not
    compile ("Unhandled FakeTensor Device Propagation for aten.cat.default", torch 2.11 on the H200:
    benchmarks/results/h200_jpeg_log_1204g.txt). Same arithmetic in the same order, so the same values
    (tests/train/test_ssd_loss.py holds them equal to torchvision's, bit for bit)."""
    h, w = int(image_size[0]), int(image_size[1])
    out = []
    for k, (fh, fw) in enumerate(grid_sizes):
        if steps is not None:
            sx, sy = w / steps[k], h / steps[k]
        else:
            sy, sx = fh, fw
        # torchvision: arange (int64) + 0.5 -> the default float dtype, divided, then cast to the features' dtype
        shifts_x = ((torch.arange(0, fw, device=device) + 0.5) / sx).to(dtype=dtype)
        shifts_y = ((torch.arange(0, fh, device=device) + 0.5) / sy).to(dtype=dtype)
        shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
        wh = torch.tensor(wh_pairs[k], dtype=torch.float32, device=device)
        if clip:
            wh = wh.clamp(min=0, max=1)
        shifts = torch.stack((shift_x.reshape(-1), shift_y.reshape(-1)) * len(wh), dim=-1).reshape(-1, 2)
        out.append(torch.cat((shifts, wh.repeat(fh * fw, 1)), dim=1))  # bf16 shifts with float32 sizes: float32
    boxes = torch.cat(out, dim=0)
    x_y_size = torch.tensor([w, h], device=device)
    return torch.cat([(boxes[:, :2] - 0.5 * boxes[:, 2:]) * x_y_size, (boxes[:, :2] + 0.5 * boxes[:, 2:]) * x_y_size],
                     -1)


class SSDTrainStep(torch.nn.Module):
    """The training forward of a torchvision SSD on a batch tensor: normalise (and resize, when the batch is not
    at the model's fixed size), backbone, head, anchors (cached per size), batched loss. Wrap this, not the SSD,
    in DistributedDataParallel: its forward is what runs."""

    def __init__(self, ssd):
        super(SSDTrainStep, self).__init__()
        self.ssd = ssd
        t = ssd.transform
        self.register_buffer("mean", torch.tensor(t.image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(t.image_std).view(1, 3, 1, 1), persistent=False)
        self.size = tuple(t.fixed_size) if t.fixed_size else None
        self._anchors = {}
        g = ssd.anchor_generator
        self._anchor_args = ([p.tolist() for p in g._wh_pairs], g.steps, g.clip)

    def anchors(self, images, features):
        """torchvision's default boxes for this image size: cached per size when eager, computed in the graph when
        compiled. Dynamo guards on what the compiled code read, the cache's keys too: filling the cache inside the
        compiled forward failed that guard on the next call, so every --compile run compiled the whole step twice
        (TORCH_LOGS=recompiles on the H200, "not ___dict_contains(((320, 320), ...), self._anchors)":
        benchmarks/results/h200_jpeg_log_1204d.txt). In the graph they add a few small kernels to each step."""
        grids = [tuple(f.shape[-2:]) for f in features]
        if _is_compiling():
            return default_boxes(*self._anchor_args, grids, images.shape[-2:], features[0].dtype, images.device)
        key = (tuple(images.shape[-2:]), images.device, features[0].dtype)
        if key not in self._anchors:
            self._anchors[key] = default_boxes(*self._anchor_args, grids, key[0], key[2], key[1])
        return self._anchors[key]

    def forward(self, images, boxes, labels, valid):
        """``images`` [B, 3, H, W], uint8 (0..255) or float (0..1); boxes in its pixels."""
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images
        h, w = x.shape[-2:]
        if self.size is not None and (h, w) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
            scale = torch.tensor([self.size[1] / w, self.size[0] / h] * 2, device=boxes.device)
            boxes = boxes * scale
        x = (x - self.mean) / self.std
        if next(self.ssd.parameters()).is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        features = list(self.ssd.backbone(x).values())
        head = self.ssd.head(features)
        anchors = self.anchors(x, features)
        return ssd_loss(head["cls_logits"], head["bbox_regression"], anchors, boxes, labels, valid,
                        self.ssd.proposal_matcher.high_threshold, self.ssd.neg_to_pos_ratio)
