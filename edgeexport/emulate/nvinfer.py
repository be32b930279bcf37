"""nvinfer on the host: one frame in, the detections DeepStream would attach to it out. A check before a Jetson.

Reads infer_config.txt with GKeyFile; prepares each frame as nvinfer does (stretch with the configured
scaling-filter, colour order, offsets, net-scale-factor); runs ONNX Runtime (TensorRT with --backend tensorrt);
parses with the built C++ parser library (the .so DeepStream loads); clusters as cluster-mode=2 (pre-cluster
threshold, per-class NMS, topk); maps boxes back to the frame as nvinfer does; draws and writes the video.
Host-side (numpy, OpenCV, ctypes; onnxruntime).
"""
import hashlib
import os
import time

import numpy as np

from ..device.configs import PARSER_SOURCES
from ..device.errors import ConfigError, InputFileError
from ..device.keyfile import KeyFile
from ..device.parity import GRAPH_BEFORE_NMS
from ..device.postprocess import efficient_nms_reference, nms_cluster, scale_to_frame
from ..device.preprocess import nvinfer_preprocess

class NvInferConfig(object):
    """The subset of infer_config.txt the emulation honours, read through GLib's GKeyFile."""

    def __init__(self, path):
        self.path, self.folder = path, os.path.dirname(os.path.abspath(path))
        kf = KeyFile(path)
        g = "property"
        dims = [int(v) for v in kf.string(g, "infer-dims").split(";")]
        if len(dims) != 3:
            raise ConfigError("{}: infer-dims must be C;H;W, got {}".format(path, dims))
        self.net_c, self.net_h, self.net_w = dims
        self.net_scale_factor = kf.double(g, "net-scale-factor")
        self.offsets = kf.double_list(g, "offsets")
        self.color_format = ["rgb", "bgr"][kf.integer(g, "model-color-format")]
        self.scaling_filter = kf.integer(g, "scaling-filter") if "scaling-filter" in kf.keys(g) else 0
        if "maintain-aspect-ratio" in kf.keys(g) and kf.integer(g, "maintain-aspect-ratio"):
            raise ConfigError("{}: maintain-aspect-ratio=1 is not emulated (the bundle writes 0)".format(path))
        self.onnx_file = os.path.join(self.folder, kf.string(g, "onnx-file"))
        self.engine_file = os.path.join(self.folder, kf.string(g, "model-engine-file"))
        self.labels_file = os.path.join(self.folder, kf.string(g, "labelfile-path"))
        self.custom_lib = os.path.join(self.folder, kf.string(g, "custom-lib-path"))
        self.parse_func = kf.string(g, "parse-bbox-func-name")
        self.num_classes = kf.integer(g, "num-detected-classes")
        self.output_names = kf.string_list(g, "output-blob-names")
        self.batch_size = kf.integer(g, "batch-size")
        self.cluster_mode = kf.integer(g, "cluster-mode")
        if self.cluster_mode not in (2, 4):
            raise ConfigError("{}: cluster-mode {} is not emulated (2 = NMS, 4 = none)".format(path, self.cluster_mode))
        attrs = {"pre-cluster-threshold": 0.2, "post-cluster-threshold": 0.0, "nms-iou-threshold": 0.3, "topk": -1}
        per_class = [dict(attrs) for _ in range(self.num_classes)]
        for group in kf.groups():  # class-attrs-all first, then class-attrs-<id> overrides (nvinfer's order)
            if group == "class-attrs-all":
                targets = range(self.num_classes)
            elif group.startswith("class-attrs-") and group[len("class-attrs-"):].isdigit():
                targets = [int(group[len("class-attrs-"):])]
            else:
                continue
            for key in kf.keys(group):
                if key in attrs:
                    value = kf.integer(group, key) if key == "topk" else kf.double(group, key)
                    for c in targets:
                        if c < self.num_classes:
                            per_class[c][key] = value
        self.class_attrs = per_class
        try:
            with open(self.labels_file) as f:
                self.labels = [line.strip() for line in f if line.strip()]
        except (IOError, OSError, UnicodeDecodeError) as e:
            raise InputFileError("cannot read labelfile-path {} of {}: {}".format(
                self.labels_file, path, getattr(e, "strerror", None) or e))
        if len(self.labels) < self.num_classes:
            raise ConfigError("{} lists {} labels, fewer than num-detected-classes={} in {}".format(
                self.labels_file, len(self.labels), self.num_classes, path))

    @property
    def pre_thresholds(self):
        return [a["pre-cluster-threshold"] for a in self.class_attrs]


def _parser_sources_hash(folder):
    h = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(root, name)
            h.update(os.path.relpath(p, folder).encode())
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def load_parser(cfg):
    """The parser .so the config names when it exists and loads here; else a host build of the bundle's own
    parser sources, kept in ~/.cache/edgeexport (never inside the bundle, whose build/ is the Jetson's)."""
    from .parser_library import ParserLibrary, build_parser
    shim = os.path.join(os.path.dirname(cfg.custom_lib), "libedgeexport_parser_shim.so")
    if os.path.isfile(cfg.custom_lib) and os.path.isfile(shim):
        try:
            return ParserLibrary(cfg.custom_lib, shim)
        except OSError:
            pass  # another architecture's build (the Jetson's): build for this host below
    src = os.path.join(cfg.folder, PARSER_SOURCES)
    if not os.path.isfile(os.path.join(src, "CMakeLists.txt")):
        raise InputFileError("no parser library at {} and no parser sources in {}".format(cfg.custom_lib, src))
    cache = os.path.join(os.path.expanduser(os.environ.get("XDG_CACHE_HOME", "~/.cache")), "edgeexport",
                         "parser-" + _parser_sources_hash(src))
    lib = os.path.join(cache, "libnvdsparsebbox_edgeexport.so")
    if not os.path.isfile(lib):
        build_parser(cache, src)
    return ParserLibrary(lib)


def efficient_nms_attributes(onnx_path):
    """The EfficientNMS_TRT node's attributes in the graph nvinfer will build (ConfigError when it has none)."""
    import onnx
    from onnx import helper
    try:
        proto = onnx.load(onnx_path, load_external_data=False)
    except Exception as e:  # whatever onnx cannot parse is not an ONNX model, by design
        raise InputFileError("{} is not a readable ONNX model ({})".format(onnx_path, str(e).splitlines()[0]))
    nodes = [n for n in proto.graph.node if n.op_type == "EfficientNMS_TRT"]
    if not nodes:
        raise ConfigError("{} uses the NMS parser but has no EfficientNMS_TRT node".format(onnx_path))
    return {a.name: helper.get_attribute_value(a) for a in nodes[0].attribute}


class Emulator(object):
    """One frame in, the detections DeepStream would attach to it out (frame pixels)."""

    def __init__(self, bundle, backend="onnxruntime"):
        if not os.path.isdir(bundle):
            raise InputFileError("no bundle at {}: expected the folder export.py wrote".format(bundle))
        self.cfg = NvInferConfig(os.path.join(bundle, "infer_config.txt"))
        self.parser = load_parser(self.cfg)
        self.plugin_nms = None
        if backend == "onnxruntime":
            from ..device.runners.onnxruntime import OnnxRuntimeRunner
            onnx_model = self.cfg.onnx_file
            if self.cfg.parse_func == "NvDsInferParseEdgeExportNMS":
                # ONNX Runtime runs the graph up to the plugin, the plugin's NumPy reference stands in for it
                self.plugin_nms = efficient_nms_attributes(self.cfg.onnx_file)
                onnx_model = os.path.join(self.cfg.folder, GRAPH_BEFORE_NMS)
            self.runner = OnnxRuntimeRunner(onnx_model)
        else:
            from ..device.runners.tensorrt import TensorRTRunner
            self.runner = TensorRTRunner(self.cfg.engine_file)
        self.layout = {"NvDsInferParseEdgeExport": "boxes_scores", "NvDsInferParseEdgeExportTopClass": "top_class",
                       "NvDsInferParseEdgeExportNMS": "efficient_nms"}.get(self.cfg.parse_func)
        if self.layout is None:
            raise ConfigError("parse-bbox-func-name {} is not one of edgeexport's parsers".format(self.cfg.parse_func))
        self.infer_seconds = 0.0

    def __enter__(self):
        self.runner.activate()
        return self

    def __exit__(self, *exc):
        self.runner.deactivate()

    def detect(self, frame_rgb):
        c = self.cfg
        x = nvinfer_preprocess(frame_rgb, c.net_w, c.net_h, c.offsets, c.net_scale_factor, c.color_format,
                               c.scaling_filter)
        if c.batch_size > 1:  # a static-batch engine: nvinfer fills the batch; we pad with copies
            x = np.repeat(x, c.batch_size, 0)
        t = time.perf_counter()
        out = self.runner.infer({"input": x})
        self.infer_seconds += time.perf_counter() - t
        if self.plugin_nms is not None:  # what TensorRT's EfficientNMS_TRT node would output
            a = self.plugin_nms
            nms = efficient_nms_reference(out["boxes"][0], out["scores"][0], a["score_threshold"],
                                          a["iou_threshold"], a["max_output_boxes"])
            out = {n: v[None] for n, v in zip(("num_detections", "detection_boxes", "detection_scores",
                                               "detection_classes"), nms)}
        frame_outputs = [(name, out[name][0]) for name in c.output_names]
        cand = self.parser.parse(self.layout, frame_outputs, c.net_w, c.net_h, c.pre_thresholds, c.num_classes)
        if c.cluster_mode == 2:
            # pre-cluster thresholds are per class; NMS IoU, topk and post-cluster threshold are taken from
            # class 0 (export writes only [class-attrs-all]; per-class overrides of those three are not emulated)
            iou = c.class_attrs[0]["nms-iou-threshold"]
            topk = c.class_attrs[0]["topk"]
            post = c.class_attrs[0]["post-cluster-threshold"]
            dets = nms_cluster(cand, c.pre_thresholds, iou, topk, post, c.net_w, c.net_h)
        else:
            dets = cand
        h, w = frame_rgb.shape[:2]
        return scale_to_frame(dets, c.net_w, c.net_h, w, h)
