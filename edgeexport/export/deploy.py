"""The deploy graph: backbone + head + anchor decode, one module, the I/O contract of docs/ARCHITECTURE.md.

Input ``input`` [B, 3, H, W] float32 = raw pixels (stretched to H x W) in the bundle's colour order minus the
offsets. Outputs (layout "boxes_scores"): ``boxes`` [B, N, 4] x1y1x2y2 normalised to [0, 1] and clipped,
``scores`` [B, N, K] softmax of the foreground classes. Layout "top_class": ``boxes``, ``top_score`` [B, N] and
``top_class`` [B, N] (float32 class index 0..K-1), fewer bytes per frame for the parser.
Host-side (torch).
"""
import math

import torch
from torch import nn
from torchvision.models.detection.image_list import ImageList

from .fold import fold_normalisation
from ..device.meta import OUTPUT_NAMES

BOX_CODER_WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # torchvision SSD's BoxCoder
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


@torch.no_grad()
def normalised_anchors(model):
    """[N, 4] anchors as (cx, cy, w, h) on the [0, 1] scale of the network input, in the head's order."""
    h, w = model.transform.fixed_size
    was_training = model.training
    model.eval()
    x = torch.zeros(1, 3, h, w)
    feats = list(model.backbone(x).values())
    anchors = model.anchor_generator(ImageList(x, [(h, w)]), feats)[0].double()  # x1y1x2y2 in pixels
    model.train(was_training)
    scale = torch.tensor([w, h, w, h], dtype=torch.float64)
    a = anchors / scale
    return torch.stack([(a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2, a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]], 1)


def decode_boxes(rel, anchors_cxcywh):
    """torchvision's BoxCoder.decode with weights (10, 10, 5, 5), in normalised coordinates, clipped to [0, 1]."""
    wx, wy, ww, wh = BOX_CODER_WEIGHTS
    dx, dy = rel[..., 0] / wx, rel[..., 1] / wy
    dw = torch.clamp(rel[..., 2] / ww, max=BBOX_XFORM_CLIP)
    dh = torch.clamp(rel[..., 3] / wh, max=BBOX_XFORM_CLIP)
    acx, acy, aw, ah = anchors_cxcywh.unbind(-1)
    cx, cy = dx * aw + acx, dy * ah + acy
    half_w, half_h = 0.5 * torch.exp(dw) * aw, 0.5 * torch.exp(dh) * ah
    boxes = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], -1)
    return boxes.clamp(0.0, 1.0)


class DeployModel(nn.Module):
    """Backbone + head + decode of a (folded) torchvision SSD; no Python-side postprocessing."""

    def __init__(self, ssd, anchors_cxcywh, layout="boxes_scores"):
        super().__init__()
        if layout not in ("boxes_scores", "top_class"):
            raise ValueError("DeployModel layout must be boxes_scores or top_class, got {!r}".format(layout))
        self.backbone, self.head, self.layout = ssd.backbone, ssd.head, layout
        self.register_buffer("anchors", anchors_cxcywh.float())

    @property
    def output_names(self):
        return list(OUTPUT_NAMES[self.layout])

    def forward(self, x):
        feats = list(self.backbone(x).values())
        head = self.head(feats)
        boxes = decode_boxes(head["bbox_regression"], self.anchors)
        scores = torch.softmax(head["cls_logits"], dim=-1)[..., 1:]
        if self.layout == "boxes_scores":
            return boxes, scores
        top_score, top_class = scores.max(dim=-1)
        return boxes, top_score, top_class.float()


def build_deploy_model(model, meta, fold="exact", color_format="rgb", layout="boxes_scores"):
    """The graph that export.py writes: normalisation folded, anchors decoded, in eval mode."""
    order = (0, 1, 2) if color_format == "rgb" else (2, 1, 0)
    folded = fold_normalisation(model, meta.image_mean, meta.image_std, fold, order)
    return DeployModel(folded, normalised_anchors(model), layout).eval()


class ReferenceModel(nn.Module):
    """The ORIGINAL model in the deploy layout: torchvision's own normalisation on 0..255 RGB images, no fold.

    ``forward(rgb)`` takes float [B, 3, H, W] raw RGB pixels at network size, divides by 255 and runs
    torchvision's ``transform.normalize``; its outputs are what parity/expected.npz holds.
    """

    def __init__(self, ssd):
        super().__init__()
        self.ssd = ssd.eval()
        self.register_buffer("anchors", normalised_anchors(ssd).float())

    def forward(self, rgb):
        x = torch.stack([self.ssd.transform.normalize(im / 255.0) for im in rgb])
        feats = list(self.ssd.backbone(x).values())
        head = self.ssd.head(feats)
        return decode_boxes(head["bbox_regression"], self.anchors), torch.softmax(head["cls_logits"], -1)[..., 1:]
