"""The export's parity check, on the host (torch + ONNX Runtime): ``check_export(model, graph, meta, images)``.

1. The export itself: the ORIGINAL model (unfolded, torchvision's own normalisation) and ONNX Runtime running
   the exported graph see the same network-size 8-bit image; the graph's input is prepared as nvinfer prepares
   it. Any difference is the fold's or the graph's: fp32 must agree to float rounding. A hard gate.
2. The preprocessing: torchvision resizes the full-size float image itself; nvinfer stretches to 8 bits first.
   Judged on detections in frame coordinates, and reported.
3. The fold's own error against the original, beside the network's fp32 noise floor (and mean_into_bias's).
"""
import numpy as np
import torch

from ..data.photos import natural_images
from ..data.synthetic import SHAPE_CLASSES, render_scene
from ..device.check.compare import compare_outputs, match_detections
from ..device.check.parity import run_backend
from ..device.meta import BundleMeta
from ..device.postprocess import Detections, detect, scale_to_frame, to_frame
from ..device.preprocess import network_input_from_8bit, nvinfer_preprocess, scale_frame, stretch_to_network
from ..device.runners.onnxruntime import OnnxRuntimeRunner
from .deploy import ReferenceModel, build_deploy_model, decode_boxes

# Detections compared at export: at least this many of the original model's best candidates over the fixture
# images, so that a model whose classes are absent from the photos (a forklift detector) is still compared.
MIN_FIXTURE_CANDIDATES = 20


def fixture_images(labels, count_photos=4, count_synthetic=4, seed=12345):
    """Natural photos shipped with scikit-image plus synthetic scenes of the model's own classes where its
    labels are shape names (so a model trained on the synthetic data has something to detect)."""
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


def fixture_threshold(expected, pre_cluster_threshold):
    """The bundle's threshold, lowered (never raised) to the score of the ``MIN_FIXTURE_CANDIDATES``-th best
    anchor over all fixture images when fewer anchors than that reach it."""
    best = np.sort(np.asarray(expected["scores"]).max(axis=-1).ravel())[::-1]
    if len(best) == 0:
        return pre_cluster_threshold
    nth = float(best[min(MIN_FIXTURE_CANDIDATES, len(best)) - 1])
    return min(pre_cluster_threshold, float(np.floor(nth * 1000) / 1000))


class ExportParity(object):
    """What ``check_export`` found: the fixtures it leaves in the bundle (``inputs``, ``expected``,
    ``threshold``), the export report (a ParityReport, the hard gate), the preprocessing agreement (a dict) and the
    fold's error (a dict per fold)."""

    def __init__(self, inputs, expected, threshold, report, preprocessing, fold_error, images, fp16=None,
                 int8=None, expected_int8=None):
        self.inputs, self.expected, self.threshold = inputs, expected, threshold
        self.report, self.preprocessing, self.fold_error, self.images = report, preprocessing, fold_error, images
        self.fp16 = fp16  # the FP16 graph under ONNX Runtime against the original: the host's fp16 proxy
        # the Q/DQ twin under ONNX Runtime (INT8 kernels): its outputs, the int8 fixtures an engine built from it is
        # held to, and their report against the original (what INT8 costs on the fixtures: informative)
        self.int8, self.expected_int8 = int8, expected_int8

    @property
    def ok(self):
        return self.report.ok

    def to_dict(self):
        return {"export": self.report.to_dict(), "preprocessing": self.preprocessing,
                "fold_relative_error": self.fold_error, "images": self.images,
                "fp16_graph": None if self.fp16 is None else self.fp16.to_dict(),
                "int8_graph": None if self.int8 is None else self.int8.to_dict()}

    def lines(self, layout):
        """The report as printed by export and saved as parity/report.txt."""
        table = self.report.table("export parity: original PyTorch vs ONNX Runtime, same 8-bit network-size images" + (
            "\n  (graph up to the EfficientNMS_TRT node, which only TensorRT runs)" if layout == "efficient_nms"
            else ""))
        pre = self.preprocessing
        fed = {"torchvision": "torchvision float resize", "nvinfer": "the model's own nvinfer-style stretch"}
        pre_line = ("preprocessing parity: {fed} vs nvinfer 8-bit stretch: {matched} matched, {missing} missing, "
                    "{extra} extra ({agreement:.1%} agreement, IoU >= {match_iou})".format(
                        fed=fed.get(pre.get("model_preprocessing"), "torchvision float resize"), **pre))
        fold_lines = ["fold error vs the original, fp32, {} fold: ".format(k) + "; ".join(
            "{} norm-rel {:.2e} max-rel {:.2e} (fp32 noise floor {:.2e})".format(
                o, v[o]["norm_rel"], v[o]["max_rel"], v[o]["noise_max_rel"]) for o in ("boxes", "scores"))
            for k, v in sorted(self.fold_error.items())]
        lines = [table, pre_line] + fold_lines
        if self.fp16 is not None:
            r = self.fp16
            lines.append("fp16 graph (TensorRT 11's FP16 source) under ONNX Runtime vs the original: {}; {} matched, "
                         "{} missing, {} extra ({}; fp16 tolerances)".format(
                             ", ".join("{} max {:.3g}".format(k, v["max_abs"]) for k, v in sorted(r.raw.items())
                                       if k not in ("top_class", "num_detections")),
                             r.matched, r.missing, r.extra, "PASS" if r.ok else "FAIL"))
        if self.int8 is not None:
            r = self.int8
            lines.append("int8 graph (Q/DQ) under ONNX Runtime vs the original: {}; {} matched, {} missing, {} extra "
                         "(its outputs are the int8 fixtures an engine built from it is checked against)".format(
                             ", ".join("{} max {:.3g}".format(k, v["max_abs"]) for k, v in sorted(r.raw.items())
                                       if k not in ("top_class", "num_detections")), r.matched, r.missing, r.extra))
        return lines


@torch.no_grad()  # scoped: a library call must not switch autograd off for the caller's later training
def check_export(model, graph, meta, images):
    """Levels 1-3 for ``graph`` (OnnxGraph) exported from ``model`` (the original torchvision SSD) under ``meta``
    (BundleMeta). Returns ExportParity; raises nothing on a mismatch (the caller decides)."""
    reference = ReferenceModel(model)
    h, w = meta.model.input_size
    small = np.stack([stretch_to_network(im, w, h, 1) for im in images])
    expected = reference_outputs(reference, small)
    inputs = network_input_from_8bit(small, meta.offsets, meta.net_scale_factor, meta.color_format)
    threshold = fixture_threshold(expected, meta.settings.pre_cluster_threshold)
    batch = 1 if meta.dynamic_batch else meta.batch_size
    with OnnxRuntimeRunner(graph.host_data) as runner:
        got = run_backend(runner, inputs, batch)
        exact = meta.fold == "exact"  # mean_into_bias is inexact at the borders by design: judged on detections
        report = compare_outputs(
            expected, got, w, h, "fp32", meta.settings, threshold,
            tolerances=None if exact else {"boxes": float("inf"), "scores": float("inf"), "top_score": float("inf")},
            detection_iou=None if exact else 0.5, min_fraction=None if exact else 0.0)
        pre = preprocessing_parity(model, runner, meta, images, batch)
    fp16 = None
    if graph.host_fp16_data is not None:
        with OnnxRuntimeRunner(graph.host_fp16_data) as runner16:
            fp16 = compare_outputs(expected, run_backend(runner16, inputs, batch), w, h, "fp16", meta.settings,
                                   threshold)
    int8 = expected_int8 = None
    if graph.host_int8_data is not None:
        with OnnxRuntimeRunner(graph.host_int8_data) as runner8:
            expected_int8 = run_backend(runner8, inputs, batch)
        int8 = compare_outputs(expected, expected_int8, w, h, "int8", meta.settings, threshold)
    errors = {"exact": fold_error(reference, build_deploy_model(model, meta.model, "exact", meta.color_format),
                                  meta, small, BundleMeta(meta.model, meta.color_format, "exact").offsets)}
    if meta.fold == "mean_into_bias":
        errors["mean_into_bias"] = fold_error(
            reference, build_deploy_model(model, meta.model, "mean_into_bias", meta.color_format), meta, small,
            [0.0, 0.0, 0.0])
    return ExportParity(inputs.astype(np.float32), expected, threshold, report, pre, errors, len(images), fp16,
                        int8, expected_int8)


@torch.no_grad()
def preprocessing_parity(model, runner, meta, images, static_batch, match_iou=0.5):
    """Level 2: the model fed as it was trained (torchvision's float resize of the full image, or, for a model
    trained with --preprocess nvinfer, nvinfer's own stretch) vs nvinfer's 8-bit stretch + graph.

    Returns a dict with matched / missing / extra detections (score >= pre-cluster threshold on either side).
    """
    h, w = meta.model.input_size
    s = meta.settings
    matched = missing = extra = 0
    ious = []
    for im in images:
        fh, fw = im.shape[:2]
        fed = im
        if meta.model.preprocessing == "nvinfer":  # trained as DeepStream feeds it: compare like with like
            fed, scale = scale_frame(im, w, h, 1)
        tv = model([torch.from_numpy(np.ascontiguousarray(fed)).permute(2, 0, 1).float() / 255.0])[0]
        keep = tv["scores"] >= s.pre_cluster_threshold
        ref = Detections(tv["boxes"][keep].numpy(), tv["scores"][keep].numpy(), tv["labels"][keep].numpy() - 1)
        if fed is not im:
            ref = to_frame(ref, scale)
        x = nvinfer_preprocess(im, w, h, meta.offsets, meta.net_scale_factor, meta.color_format, 1)
        out = run_backend(runner, x, static_batch)
        dets = detect(out, 0, w, h, meta.model.num_classes, s.pre_cluster_threshold, s.nms_iou_threshold, s.topk)
        test = scale_to_frame(dets, w, h, fw, fh)
        pairs, miss, ext = match_detections(ref, test, match_iou)
        matched, missing, extra = matched + len(pairs), missing + len(miss), extra + len(ext)
        ious += [p[2] for p in pairs]
    total = matched + missing + extra
    return {"images": len(images), "matched": matched, "missing": missing, "extra": extra,
            "model_preprocessing": meta.model.preprocessing,
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
