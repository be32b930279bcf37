import copy

import numpy as np
import pytest
import torch
from torch import nn

from edgeexport.export.deploy import ReferenceModel, build_deploy_model
from edgeexport.device.errors import ModelStructureError
from edgeexport.export.fold import find_first_conv, fold_normalisation
from edgeexport.device.meta import BundleMeta
from edgeexport.data.photos import natural_images

from ..conftest import make_model


def _images8(n=4, size=320):
    import cv2
    return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in natural_images(n)])


@pytest.fixture(scope="module")
def large():
    return make_model("ssdlite320_mobilenet_v3_large")


def _head(model, x):
    return model.head(list(model.backbone(x).values()))


def test_exact_fold_is_exact_in_float64_borders_included(large):
    model, meta = large
    model64 = copy.deepcopy(model).double()
    x = torch.from_numpy(_images8(2).transpose(0, 3, 1, 2).copy()).double()
    mean = torch.tensor(meta.image_mean, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(meta.image_std, dtype=torch.float64).view(1, 3, 1, 1)
    ref = _head(model64, (x / 255 - mean) / std)
    folded = fold_normalisation(model64, meta.image_mean, meta.image_std, "exact")
    got = _head(folded, x - 255 * mean)
    for k in ref:
        rel = ((got[k] - ref[k]).abs().max() / ref[k].abs().max()).item()
        assert rel < 1e-12, (k, rel)


def test_exact_fold_fp32_error_is_the_networks_own_rounding_noise(large):
    """fp32: norm-wise relative error <= 1e-5, and the max error no larger than the original model's own
    fp32 noise floor (its input rounded differently) allows; the mean-into-bias fold is far worse."""
    from edgeexport.export.parity import fold_error
    model, meta = large
    images8 = _images8()
    ref = ReferenceModel(model)
    exact = fold_error(ref, build_deploy_model(model, meta, "exact"), BundleMeta(meta), images8,
                       BundleMeta(meta).offsets)
    bias = fold_error(ref, build_deploy_model(model, meta, "mean_into_bias"), BundleMeta(meta), images8, [0, 0, 0])
    for out in ("boxes", "scores"):
        assert exact[out]["norm_rel"] <= 1e-5, exact
        assert exact[out]["max_rel"] <= 3 * max(exact[out]["noise_max_rel"], 1e-6), exact
        assert bias[out]["max_rel"] > 100 * exact[out]["max_rel"], bias


def test_mean_into_bias_differs_only_near_the_borders(large):
    model, meta = large
    x = torch.from_numpy(_images8(2).transpose(0, 3, 1, 2).copy()).float()
    normed = torch.stack([model.transform.normalize(im / 255) for im in x])
    _, conv = find_first_conv(model.backbone)
    ref = conv(normed)
    _, conv_b = find_first_conv(fold_normalisation(model, meta.image_mean, meta.image_std, "mean_into_bias").backbone)
    diff = (conv_b(x) - ref).abs()
    assert diff[..., 1:-1, 1:-1].max() < 1e-3 * ref.abs().max()  # interior: same function
    assert diff[..., 0, :].max() > 1e-2 * ref.abs().max()  # border row: padding saw raw 0, not the mean


def test_bgr_fold_permutes_input_channels(large):
    model, meta = large
    x = torch.from_numpy(_images8(2).transpose(0, 3, 1, 2).copy()).float()
    ref = ReferenceModel(model)(x)
    bgr = build_deploy_model(model, meta, "exact", "bgr")
    off = torch.tensor(BundleMeta(meta, color_format="bgr").offsets).view(1, 3, 1, 1)
    boxes, scores = bgr(x.flip(1) - off)
    assert (boxes - ref[0]).abs().max() < 1e-4 and (scores - ref[1]).abs().max() < 1e-4


def test_fold_leaves_the_original_untouched(large):
    model, meta = large
    before = copy.deepcopy(model.state_dict())
    fold_normalisation(model, meta.image_mean, meta.image_std)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_first_layer_must_be_a_plain_three_channel_conv():
    net = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 8, 3))
    with pytest.raises(ModelStructureError, match="BatchNorm2d"):
        find_first_conv(net)
    with pytest.raises(ModelStructureError, match="3 input channels"):
        find_first_conv(nn.Sequential(nn.Conv2d(1, 8, 3)))
    with pytest.raises(ModelStructureError, match="padding_mode=reflect"):
        find_first_conv(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")))
    name, conv = find_first_conv(nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, 3)), nn.ReLU()))
    assert name == "0.0" and conv.in_channels == 3
