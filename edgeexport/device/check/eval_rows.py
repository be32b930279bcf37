"""The rows of `evaluate`: one way each of turning an image into detections, so that where the mAP goes can be
read off the table.

- ``onnxruntime``: the exported graph fed as torchvision feeds the original model (the full image resized in float,
  bilinear), post-processed as torchvision's SSD does: isolates the export;
- ``nvinfer``: the graph fed as nvinfer feeds it (8-bit frame, even crop, its scaling filter, offsets), the parser
  (the compiled C++ one where a host build exists, else its NumPy reference, tested equal), nvinfer's clustering
  with the config's per-class attributes: isolates DeepStream's pre- and post-processing;
- ``tensorrt``: the same path with the engine (on the device): isolates the engine's precision;
- ``deepstream``: detections the DeepStream app wrote (``deepstream_app --coco-out``), scored as they are;
- ``pytorch``: the original model (torch, on the training host; edgeexport.model.predict);
- ``fp16``: the folded deploy graph in fp16 on a CUDA GPU through the nvinfer path: the host's proxy for the
  ``tensorrt`` row of an FP16 engine;
- ``int8``: the bundle's explicitly quantized twin (export --precision int8 --calib-data) through the nvinfer path,
  run by ONNX Runtime, which executes Q/DQ graphs with INT8 kernels: the host's proxy for the ``tensorrt`` row of an
  INT8 engine, and its mAP known before the board.

Every row returns, per image, Detections in image pixels with class indices into the bundle's labels.
Device-side (Python 3.6; OpenCV for resizing, imported on first use).
"""
import importlib
import os
import time

import numpy as np

from ..bundle import GRAPH_BEFORE_NMS
from ..errors import BackendUnavailableError, InputFileError, UsageError
from ..fileio import read_json
from ..postprocess import ClassAttrs, Detections, efficient_nms_outputs, greedy_nms

ROWS = ("pytorch", "onnxruntime", "nvinfer", "int8", "tensorrt", "deepstream", "fp16")
# rows whose code lives on the training host, found by name only when asked for (the bundle does not ship them);
# fp16: the folded deploy graph in fp16 on a CUDA GPU through nvinfer's path, the host's proxy for an FP16 engine
HOST_ROWS = {"pytorch": "edgeexport.model.predict:PyTorchRow", "fp16": "edgeexport.export.torch_runner:Fp16DeployRow"}


def torchvision_input(image_rgb, meta):
    """What torchvision's SSD transform makes of an image, as the folded graph takes it: the float image resized
    bilinearly to the network size (GeneralizedRCNNTransform: F.interpolate, align_corners=False, what OpenCV's
    INTER_LINEAR computes), on the 0-255 scale, minus offsets, in the graph's colour order."""
    import cv2
    h, w = meta.model.input_size
    x = cv2.resize(np.asarray(image_rgb, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    if meta.color_format == "bgr":
        x = x[..., ::-1]
    x = (x - np.asarray(meta.offsets, np.float32)) * np.float32(meta.net_scale_factor)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def torchvision_postprocess(boxes, scores, image_w, image_h, score_threshold, nms_threshold=0.55,
                            topk_candidates=300, detections_per_img=300):
    """torchvision's SSD.postprocess_detections in NumPy, then its resize back to the image: per class, scores above
    the threshold, the best ``topk_candidates``, boxes clipped to the network input, batched NMS, the best
    ``detections_per_img`` overall. ``boxes`` normalised x1y1x2y2 [N, 4], ``scores`` [N, K]."""
    b = np.clip(np.asarray(boxes, np.float64), 0.0, 1.0)
    scores = np.asarray(scores, np.float64)
    keep_b, keep_s, keep_c = [], [], []
    for c in range(scores.shape[1]):
        idx = np.nonzero(scores[:, c] > score_threshold)[0]
        idx = idx[np.argsort(-scores[idx, c], kind="mergesort")][:topk_candidates]
        for i in idx[greedy_nms(b[idx], nms_threshold)]:
            keep_b.append(b[i])
            keep_s.append(scores[i, c])
            keep_c.append(c)
    if not keep_s:
        return Detections(np.zeros((0, 4)), [], [])
    order = np.argsort(-np.asarray(keep_s), kind="mergesort")[:detections_per_img]
    px = np.asarray(keep_b)[order] * np.asarray([image_w, image_h, image_w, image_h])
    return Detections(px, np.asarray(keep_s)[order], np.asarray(keep_c)[order])


class Row(object):
    """``predict(image_rgb) -> Detections``; ``seconds`` spent predicting."""
    name = ""

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def timed(self, image):
        t = time.perf_counter()
        out = self.predict(image)
        self.seconds += time.perf_counter() - t
        return out


class RunnerRow(Row):
    """A row around a runner (``self.runner``, ``self.meta``): the runner lives as long as the row is entered."""

    def __enter__(self):
        self.runner.activate()
        return self

    def __exit__(self, *exc):
        self.runner.deactivate()
        return False

    def infer_one(self, x):
        """The outputs for one image; a graph of fixed batch N gets it N times and the first answer is kept."""
        if not self.meta.dynamic_batch and self.meta.batch_size > 1:
            x = np.repeat(x, self.meta.batch_size, 0)
        return {k: v[0] for k, v in self.runner.infer({"input": x}).items()}


class OnnxRuntimeRow(RunnerRow):
    name = "onnxruntime"

    def __init__(self, bundle, score_threshold):
        super(OnnxRuntimeRow, self).__init__()
        from ..runners.onnxruntime import OnnxRuntimeRunner
        self.meta, self.threshold = bundle.meta, score_threshold
        self.runner = OnnxRuntimeRunner(bundle.host_graph())

    def predict(self, image):
        out = self.infer_one(torchvision_input(image, self.meta))
        h, w = image.shape[:2]
        if "scores" in out:
            return torchvision_postprocess(out["boxes"], out["scores"], w, h, self.threshold)
        # top_class: one class per anchor is all the graph gives
        k = self.meta.model.num_classes
        scores = np.zeros((len(out["top_score"]), k), np.float32)
        scores[np.arange(len(scores)), np.clip(out["top_class"].astype(int), 0, k - 1)] = out["top_score"]
        return torchvision_postprocess(out["boxes"], scores, w, h, self.threshold)


class NvInferRow(RunnerRow):
    """nvinfer's path around a runner (ONNX Runtime on the graph, or TensorRT on the engine)."""
    name = "nvinfer"

    def __init__(self, bundle, score_threshold, runner=None, parser=None):
        super(NvInferRow, self).__init__()
        from ..deepstream.nvinfer_config import NvInferConfig
        self.meta, self.cfg = bundle.meta, NvInferConfig(bundle.infer_config_path)
        # mAP ranks detections down to a low score; the deployed pre-cluster threshold would only cut the ranking
        self.attrs = [ClassAttrs(score_threshold, a.post, a.iou, a.topk, a.min_w, a.min_h, a.max_w, a.max_h,
                                 a.roi_top, a.roi_bottom) for a in self.cfg.class_attrs]
        self.plugin = None
        if runner is None:
            from ..runners.onnxruntime import OnnxRuntimeRunner
            if self.meta.layout == "efficient_nms":  # ONNX Runtime runs up to the plugin; its reference after
                runner = OnnxRuntimeRunner(bundle.file(GRAPH_BEFORE_NMS))
                self.plugin = (score_threshold, self.meta.settings.nms_iou_threshold, self.meta.max_output_boxes)
            else:
                runner = OnnxRuntimeRunner(bundle.onnx_path)
        self.runner, self.parser = runner, parser

    def predict(self, image):
        c = self.cfg
        x, scale = c.network_input(image)
        out = self.infer_one(x)
        if self.plugin is not None:
            out = efficient_nms_outputs(out["boxes"], out["scores"], *self.plugin)
        return c.detections(out, scale, self.parser, self.attrs)


class Int8Row(NvInferRow):
    """nvinfer's path with ONNX Runtime on the bundle's Q/DQ graph (up to the plugin node for efficient_nms)."""
    name = "int8"

    def __init__(self, bundle, score_threshold, parser=None):
        from ..runners.onnxruntime import OnnxRuntimeRunner
        meta = bundle.meta
        graph = bundle.host_graph(int8=True)  # the int8 row runs the bundle's explicitly quantized graph
        super(Int8Row, self).__init__(bundle, score_threshold, runner=OnnxRuntimeRunner(graph), parser=parser)
        if meta.layout == "efficient_nms":
            self.plugin = (score_threshold, meta.settings.nms_iou_threshold, meta.max_output_boxes)


def results_problem(results):
    """What makes ``results`` not a list of COCO results as deepstream_app --coco-out writes them, field by field
    (the first entry that fails), or None."""
    from ..meta import is_finite_number
    from .coco_eval import coco_id
    if not isinstance(results, list):
        return "expected a list, found {}".format(type(results).__name__)
    for i, r in enumerate(results):
        box = r.get("bbox") if isinstance(r, dict) else None
        if not isinstance(r, dict) or not isinstance(r.get("file_name"), str) or not is_finite_number(r.get("score")):
            return "[{}]: expected {{file_name: a string, score: a number, bbox, ...}}, found {!r}".format(i, r)[:200]
        if not isinstance(box, list) or len(box) != 4 or not all(is_finite_number(v) for v in box):
            return "[{}]: bbox must be 4 finite numbers, found {!r}".format(i, box)[:200]
        name, cid = r.get("category_name"), r.get("category_id")
        if not (isinstance(name, str) or (name is None and coco_id(cid) and not isinstance(cid, str))):
            return "[{}]: expected a category_name string or an integer category_id, found {!r} / {!r}".format(
                i, name, cid)[:200]
    return None


class DeepStreamResults(object):
    """Detections a DeepStream app wrote as COCO results (deepstream_app --coco-out: image ids in folder order,
    ``file_name`` and ``category_name`` on every result), matched to the set's images by file name."""
    name = "deepstream"

    def __init__(self, path, labels):
        self.results = read_json(path, " (the DeepStream results: what deepstream_app --coco-out wrote)")
        problem = results_problem(self.results)
        if problem:
            raise InputFileError("{} is not a list of COCO results with file_name (what deepstream_app --coco-out "
                                 "writes): {}".format(path, problem))
        self.labels = labels

    def detections(self, vset):
        index = {name: i for i, name in enumerate(self.labels)}
        per_image = {}
        for r in self.results:
            image = vset.by_file.get(os.path.basename(r["file_name"]))
            name = r.get("category_name")
            c = index.get(name) if name is not None else int(r.get("category_id", 0)) - 1
            if image is None or c is None or c < 0:
                continue
            x, y, w, h = [float(v) for v in r["bbox"]]
            per_image.setdefault(image["id"], []).append(([x, y, x + w, y + h], float(r["score"]), c))
        return {i: Detections([d[0] for d in dets], [d[1] for d in dets], [d[2] for d in dets])
                for i, dets in per_image.items()}


def make_row(name, bundle, score_threshold=0.01, model=None, engine=None):
    """The row ``name`` for ``bundle`` (a Bundle) keeping detections down to ``score_threshold``. ``model``: the
    checkpoint path (or, for pytorch, the in-memory torchvision SSD) the host rows need; ``engine``: the tensorrt
    row's engine (default: the one infer_config.txt names)."""
    if name == "onnxruntime":
        return OnnxRuntimeRow(bundle, score_threshold)
    if name == "nvinfer":
        return NvInferRow(bundle, score_threshold, parser=host_parser(bundle))
    if name == "int8":
        return Int8Row(bundle, score_threshold, parser=host_parser(bundle))
    if name == "tensorrt":
        from ..runners import get_runner
        engine = engine or bundle.configured_engine_path()
        if not os.path.isfile(engine):
            raise InputFileError("engine not found: {}; build it: python3 -m edgeexport.build_engine {}".format(
                engine, bundle.path))
        return NvInferRow(bundle, score_threshold, runner=get_runner("tensorrt", engine, meta=bundle.meta))
    if name in HOST_ROWS:
        module, cls = HOST_ROWS[name].split(":")
        try:
            row_class = getattr(importlib.import_module(module), cls)
        except ImportError as e:
            raise BackendUnavailableError("the {} row runs on the training host (torch and edgeexport[export]: {}); "
                                          "run it there".format(name, e))
        if model is None:
            raise UsageError("the {} row needs --model-path (the checkpoint the bundle was exported from)".format(name))
        if isinstance(model, str):
            return row_class(model, bundle, score_threshold)
        if not hasattr(row_class, "from_model"):
            raise UsageError("the {} row loads its model from the checkpoint: pass its path".format(name))
        return row_class.from_model(model, bundle.meta.model, score_threshold, bundle.meta)
    raise UsageError("no evaluate row {!r}; available: {}".format(name, ", ".join(ROWS)))


def host_parser(bundle):
    """The compiled C++ parser where this machine can build and load its host variant, else None (the NumPy
    reference stands in: tests/jetson/test_parser.py holds them equal)."""
    try:
        from ..deepstream.parser_library import load_bundle_parser
        return load_bundle_parser(bundle.path)
    except Exception:  # no compiler, no make, another architecture's .so: by design "no C++ parser here"
        return None
