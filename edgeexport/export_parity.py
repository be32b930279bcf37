"""The export's two parity questions, on the host (torch + ONNX Runtime).

1. The export itself: the ORIGINAL model (unfolded, torchvision's own normalisation) and ONNX Runtime running
   the exported graph see the same network-size 8-bit image; the graph's input is prepared as nvinfer prepares
   it. Any difference is the fold's or the graph's: fp32 must agree to float rounding.
2. The preprocessing: torchvision resizes the full-size float image itself; nvinfer stretches to 8 bits first.
   Judged on detections in frame coordinates, and reported.
"""
import numpy as np
import torch

from .compare import compare_outputs, match_detections
from .deploy import ReferenceModel, build_deploy_model, decode_boxes
from .meta import BundleMeta
from .parity import run_backend
from .postprocess import Detections, detect, scale_to_frame
from .preprocess import network_input_from_8bit, nvinfer_preprocess, stretch_to_network


def fixture_images(labels, count_photos=4, count_synthetic=4, seed=12345):
    """Natural photos shipped with scikit-image plus synthetic scenes of the model's own classes where its
    labels are shape names (so a model trained on the synthetic data has something to detect)."""
    from .data.synthetic import SHAPE_CLASSES, render_scene
    from .sample_images import natural_images
    images = natural_images(count_photos)
    shapes = [l for l in labels if l in SHAPE_CLASSES] or list(SHAPE_CLASSES[:3])
    rng = np.random.default_rng(seed)
    for _ in range(count_synthetic):
        h, w = (int(v) for v in rng.integers(240, 481, 2))
        images.append(render_scene(rng, h, w, shapes)[0])
    return images


@torch.no_grad()
def reference_outputs(reference_model, images8):
    """The original model's raw outputs for network-size uint8 RGB images [B, H, W, 3]."""
    x = torch.from_numpy(np.ascontiguousarray(images8.transpose(0, 3, 1, 2))).float()
    boxes, scores = reference_model(x)
    return {"boxes": boxes.numpy(), "scores": scores.numpy()}


def export_parity(reference_model, runner, meta, images, settings, static_batch):
    """Level 1. Returns (inputs [B,3,H,W] float32, expected {"boxes","scores"}, ParityReport)."""
    h, w = meta.model.input_size
    small = np.stack([stretch_to_network(im, w, h, 1) for im in images])
    expected = reference_outputs(reference_model, small)
    inputs = network_input_from_8bit(small, meta.offsets, meta.net_scale_factor, meta.color_format)
    got = run_backend(runner, inputs, static_batch)
    precision_tolerance = None
    if meta.fold == "mean_into_bias":  # inexact by design at the borders: judged on detections only
        precision_tolerance = {"boxes": float("inf"), "scores": float("inf"), "top_score": float("inf")}
    report = compare_outputs(expected, got, w, h, "fp32", settings.pre_cluster_threshold, settings.nms_iou_threshold,
                             settings.topk, tolerances=precision_tolerance,
                             detection_iou=0.5 if meta.fold == "mean_into_bias" else None,
                             min_fraction=0.0 if meta.fold == "mean_into_bias" else None)
    return inputs, expected, report


@torch.no_grad()
def preprocessing_parity(model, runner, meta, images, settings, static_batch, match_iou=0.5):
    """Level 2: torchvision's own pipeline on the full-size float image vs nvinfer's 8-bit stretch + graph.

    Returns a dict with matched / missing / extra detections (score >= pre-cluster threshold on either side).
    """
    h, w = meta.model.input_size
    matched = missing = extra = 0
    ious = []
    for im in images:
        fh, fw = im.shape[:2]
        tv = model([torch.from_numpy(im).permute(2, 0, 1).float() / 255.0])[0]
        keep = tv["scores"] >= settings.pre_cluster_threshold
        ref = Detections(tv["boxes"][keep].numpy(), tv["scores"][keep].numpy(), tv["labels"][keep].numpy() - 1)
        x = nvinfer_preprocess(im, w, h, meta.offsets, meta.net_scale_factor, meta.color_format, 1)
        out = run_backend(runner, x, static_batch)
        dets = detect(out, 0, w, h, meta.model.num_classes, settings.pre_cluster_threshold,
                      settings.nms_iou_threshold, settings.topk)
        test = scale_to_frame(dets, w, h, fw, fh)
        pairs, miss, ext = match_detections(ref, test, match_iou)
        matched, missing, extra = matched + len(pairs), missing + len(miss), extra + len(ext)
        ious += [p[2] for p in pairs]
    total = matched + missing + extra
    return {"images": len(images), "matched": matched, "missing": missing, "extra": extra,
            "agreement": 1.0 if total == 0 else matched / float(total), "match_iou": match_iou,
            "mean_iou": float(np.mean(ious)) if ious else None,
            "min_iou": float(np.min(ious)) if ious else None}


@torch.no_grad()
def fp16_vs_fp32(model, meta, images, device):
    """The engine's fp16 proxy: the folded graph in fp16 on ``device`` against the ORIGINAL model in fp32, both on
    the images stretched to the network size in 8 bits. Returns (reference, candidate) {"boxes", "scores"}.
    Callers turn TF32 off, or the "fp32" reference is not fp32."""
    h, w = meta.input_size
    small = np.stack([stretch_to_network(im, w, h, 1) for im in images])
    rb, rs = ReferenceModel(model).to(device).eval()(
        torch.from_numpy(small.transpose(0, 3, 1, 2).copy()).float().to(device))
    deploy = build_deploy_model(model.cpu(), meta).half().to(device).eval()
    model.to(device)
    x = torch.from_numpy(network_input_from_8bit(small, BundleMeta(meta).offsets)).half().to(device)
    fb, fs = deploy(x)
    return ({"boxes": rb.cpu().numpy(), "scores": rs.cpu().numpy()},
            {"boxes": fb.float().cpu().numpy(), "scores": fs.float().cpu().numpy()})


@torch.no_grad()
def fold_error(reference_model, deploy_model, meta, images8, fold_offsets):
    """Error of a folded graph's fp32 outputs against the original's, per output:
    ``norm_rel`` = ||folded - original|| / ||original|| and ``max_rel`` = max|diff| / max|original|.
    ``noise_max_rel``: the same model evaluated twice with its normalised input rounded differently (float64
    normalisation cast to fp32): the fp32 noise floor of the network itself, for scale."""
    x = torch.from_numpy(np.ascontiguousarray(images8.transpose(0, 3, 1, 2))).float()
    ref = reference_model(x)
    order = [0, 1, 2] if meta.color_format == "rgb" else [2, 1, 0]
    off = torch.tensor(fold_offsets, dtype=torch.float32).view(1, 3, 1, 1)
    got = deploy_model(x[:, order] - off)
    ssd = reference_model.ssd
    mean = torch.tensor(ssd.transform.image_mean, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(ssd.transform.image_std, dtype=torch.float64).view(1, 3, 1, 1)
    normalised = ((x.double() / 255 - mean) / std).float()
    head = ssd.head(list(ssd.backbone(normalised).values()))
    alt = (decode_boxes(head["bbox_regression"], reference_model.anchors),
           torch.softmax(head["cls_logits"], -1)[..., 1:])
    out = {}
    for name, g, r, a in zip(("boxes", "scores"), got[:2], ref, alt):
        scale = r.abs().max().clamp_min(1e-12)
        out[name] = {"norm_rel": float((g - r).norm() / r.norm().clamp_min(1e-12)),
                     "max_rel": float((g - r).abs().max() / scale),
                     "noise_max_rel": float((a - r).abs().max() / scale)}
    return out
