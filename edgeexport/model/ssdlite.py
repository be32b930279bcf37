"""SSDLite320 builders: torchvision's MobileNetV3-Large model, and the same head on MobileNetV3-Small.

Both return torchvision's own ``SSD`` module, so state_dict keys are torchvision's and checkpoints from its
detection reference scripts load unchanged. Host-side only (needs torch/torchvision).
"""
from functools import partial

import torch
from torch import nn
from torchvision.models import mobilenet_v3_large, mobilenet_v3_small
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.ssdlite import SSDLiteHead, _mobilenet_extractor, _normal_init

from ..device.errors import InputFileError, ModelStructureError
from ..device.meta import ModelMeta

_BACKBONES = {"ssdlite320_mobilenet_v3_large": mobilenet_v3_large,
              "ssdlite320_mobilenet_v3_small": mobilenet_v3_small}
ANCHORS_PER_LOCATION = 6  # DefaultBoxGenerator([[2, 3]] * 6): 1 + 1 + 2 * 2 boxes per cell


def _imagenet_backbone_weights(arch):
    from torchvision.models import MobileNet_V3_Large_Weights, MobileNet_V3_Small_Weights
    return (MobileNet_V3_Large_Weights if arch.endswith("large") else MobileNet_V3_Small_Weights).IMAGENET1K_V1


def build_ssdlite(meta, pretrained_backbone=False, score_thresh=0.001, nms_thresh=0.55, detections_per_img=300,
                  topk_candidates=300):
    """Build a torchvision ``SSD`` for ``meta`` (arch, K classes, input size, mean/std).

    Mirrors torchvision's ``ssdlite320_mobilenet_v3_large`` recipe (BatchNorm eps 1e-3 / momentum 0.03, the
    reduced tail when no ImageNet backbone is used, normal init, all backbone stages trainable) so that weights
    are interchangeable with it, and applies the same recipe to MobileNetV3-Small.
    """
    if not isinstance(meta, ModelMeta):
        raise TypeError("meta must be a ModelMeta, got {}".format(type(meta).__name__))
    norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    weights = None
    if pretrained_backbone:
        if meta.reduced_tail:
            raise ValueError("an ImageNet backbone has the full tail: build with reduced_tail=False, got True")
        weights = _imagenet_backbone_weights(meta.arch)
    try:
        backbone = _BACKBONES[meta.arch](weights=weights, norm_layer=norm_layer, reduced_tail=meta.reduced_tail)
    except (OSError, RuntimeError) as e:  # URLError is an OSError; a truncated download is a RuntimeError
        raise InputFileError(
            "could not fetch the ImageNet weights for {} ({}). Expected them in torch's hub cache "
            "($TORCH_HOME/hub/checkpoints); got no network. Copy the file there or train without "
            "--pretrained-backbone".format(meta.arch, e))
    if weights is None:
        _normal_init(backbone)
    backbone = _mobilenet_extractor(backbone, 6, norm_layer)
    size = tuple(meta.input_size)
    anchor_generator = DefaultBoxGenerator([[2, 3] for _ in range(6)], min_ratio=0.2, max_ratio=0.95)
    out_channels = det_utils.retrieve_out_channels(backbone, size)
    head = SSDLiteHead(out_channels, anchor_generator.num_anchors_per_location(), meta.num_classes + 1, norm_layer)
    return SSD(backbone, anchor_generator, size, meta.num_classes + 1, head=head,
               image_mean=list(meta.image_mean), image_std=list(meta.image_std), score_thresh=score_thresh,
               nms_thresh=nms_thresh, detections_per_img=detections_per_img, topk_candidates=topk_candidates)


def head_num_classes(state_dict):
    """K (foreground classes) that a torchvision SSDLite state_dict's classification head predicts, or None."""
    w = state_dict.get("head.classification_head.module_list.0.1.weight")
    if w is None or w.ndim != 4 or w.shape[0] % ANCHORS_PER_LOCATION:
        return None
    return w.shape[0] // ANCHORS_PER_LOCATION - 1


@torch.no_grad()
def count_anchors(model):
    """Number of anchors N the model predicts for its fixed input size (3234 at 320x320)."""
    h, w = model.transform.fixed_size or (320, 320)
    was_training = model.training
    model.eval()
    feats = model.backbone(torch.zeros(1, 3, h, w))
    model.train(was_training)
    return sum(f.shape[-2] * f.shape[-1] for f in feats.values()) * ANCHORS_PER_LOCATION


def calibrate_batchnorm(model, images, size=None):
    """Give an untrained torchvision SSD realistic BatchNorm statistics by running images in train mode.

    An untrained network with default statistics answers almost the same whatever the input, which would make
    any parity test pass; after this its activations depend on the picture, as a trained model's do.
    """
    import torch.nn.functional as F
    h, w = size or model.transform.fixed_size
    batch = torch.stack([F.interpolate(torch.from_numpy(im).permute(2, 0, 1)[None].float(), size=(h, w),
                                       mode="bilinear", align_corners=False)[0] / 255.0 for im in images])
    batch = torch.stack([model.transform.normalize(b) for b in batch])
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model.backbone(batch)
            model.head(list(model.backbone(batch).values()))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return model.eval()


def find_first_conv(backbone):
    """The convolution that first touches the image, checked to be the first operation of the network.

    Only containers may precede it: a leaf module before it (a normalisation layer, say) would see the
    un-normalised input, and folding into the conv would then be wrong.
    """
    for name, module in backbone.named_modules():
        if isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)) or module is backbone:
            continue
        if type(module).__name__ in ("Conv2dNormActivation", "ConvNormActivation"):
            continue  # a torchvision Sequential subclass: a container
        if not isinstance(module, nn.Conv2d):
            raise ModelStructureError("the first layer of the backbone is {} ({}), expected a plain Conv2d to fold the "
                                      "normalisation into".format(name, type(module).__name__))
        if module.in_channels != 3 or module.groups != 1 or module.padding_mode != "zeros":
            raise ModelStructureError(
                "the first conv {} must have 3 input channels, groups=1 and zero padding to take the fold; got "
                "in_channels={}, groups={}, padding_mode={}".format(name, module.in_channels, module.groups,
                                                                  module.padding_mode))
        return name, module
    raise ModelStructureError("no convolution found in the backbone")
