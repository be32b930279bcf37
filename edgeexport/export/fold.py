"""Fold the model's input normalisation into its first convolution, so that nvinfer's single
``net-scale-factor`` and per-channel ``offsets`` reproduce ``(x/255 - mean[c]) / std[c]`` exactly.

nvinfer computes ``y = net-scale-factor * (x - offsets[c])``. With ``offsets = 255 * mean`` and
``net-scale-factor = 1``, the first convolution receives ``x - 255*mean`` and needs ``1/(255*std[c])`` per
input channel: a per-input-channel factor on its weights. The conv's zero padding pads ``x - 255*mean`` with 0,
which is exactly the normalised image's 0, so the fold is exact at every pixel (the "exact" fold).

The "mean_into_bias" fold also moves the mean into the conv bias (offsets 0): inside the image it is the same,
but the padded border now sees raw 0 instead of the mean, so border outputs differ. Offered only on request.
Host-side (torch).
"""
import copy

import torch
from torch import nn

from ..model.ssdlite import find_first_conv
from ..device.meta import FOLDS


@torch.no_grad()
def fold_normalisation(model, image_mean, image_std, fold="exact", channel_order=(0, 1, 2)):
    """Return a deep copy of a torchvision SSD whose backbone takes ``raw_pixels[channel_order] - offsets``.

    ``channel_order[i]`` is the RGB index of graph input channel i ((2, 1, 0) for a BGR engine).
    The copy's ``transform`` is left as is: callers use its backbone and head directly.
    """
    if fold not in FOLDS:
        raise ValueError("fold must be one of {}, got {!r}".format(FOLDS, fold))
    if sorted(channel_order) != [0, 1, 2]:
        raise ValueError("channel_order must be a permutation of 0, 1, 2, got {}".format(channel_order))
    folded = copy.deepcopy(model).eval()
    _, conv = find_first_conv(folded.backbone)
    w = conv.weight.double()
    mean = torch.tensor(image_mean, dtype=torch.float64)
    std = torch.tensor(image_std, dtype=torch.float64)
    w_scaled = w / (255.0 * std).view(1, 3, 1, 1)  # in RGB input order
    if fold == "mean_into_bias":
        # conv((x - 255 m) / (255 s)) = conv_scaled(x) - sum_{c,k} w_scaled * 255 m
        shift = (w_scaled * (255.0 * mean).view(1, 3, 1, 1)).sum(dim=(1, 2, 3))
        bias = conv.bias.double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
        conv.bias = nn.Parameter((bias - shift).to(conv.weight.dtype))
    conv.weight.copy_(w_scaled[:, list(channel_order)].to(conv.weight.dtype))
    return folded
