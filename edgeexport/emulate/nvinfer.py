"""nvinfer on the host: one frame in, the detections DeepStream would attach to it out. A check before a Jetson.

Reads infer_config.txt as gst-nvinfer does (edgeexport.device.deepstream.nvinfer_config); prepares each frame as nvinfer
does (even crop, stretch or aspect-kept scaling with the configured scaling-filter, colour order, offsets,
net-scale-factor); runs ONNX Runtime (TensorRT with --backend tensorrt); parses with the built C++ parser library
(the .so DeepStream loads); clusters as nvinfer does (cluster-mode 2 or 4, attributes per class); maps boxes back
to the frame and applies the per-class detection filters as nvinfer does; draws and writes the video.
Host-side (numpy, OpenCV, ctypes; onnxruntime).
"""
import os
import time

import numpy as np

from ..device.bundle import GRAPH_BEFORE_NMS
from ..device.deepstream.bundle_check import load_bundle
from ..device.errors import ConfigError, InputFileError
from ..device.postprocess import efficient_nms_outputs


def load_parser(cfg):
    """The C++ parser for ``cfg``'s bundle (edgeexport.device.deepstream.parser_library.load_bundle_parser)."""
    from ..device.deepstream.parser_library import load_bundle_parser
    return load_bundle_parser(cfg.folder, cfg.custom_lib)


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

    def __init__(self, bundle, backend="onnxruntime", deepstream_version=None):
        if not os.path.isdir(bundle):
            raise InputFileError("no bundle at {}: expected the folder export.py wrote".format(bundle))
        # the whole bundle first: a config, labels or graph that disagrees with model.json is refused, and the
        # values tuned on purpose are followed, as nvinfer follows them (deepstream.bundle_check)
        self.bundle = load_bundle(bundle, deepstream_version=deepstream_version)
        self.cfg = self.bundle.checked.config
        layout = self.cfg.layout  # a parser that is not edgeexport's is refused before anything loads
        self.parser = load_parser(self.cfg)
        self.plugin_nms = None
        if backend == "onnxruntime":
            from ..device.runners.onnxruntime import OnnxRuntimeRunner
            onnx_model = self.cfg.onnx_file
            if layout == "efficient_nms":
                # ONNX Runtime runs the graph up to the plugin, the plugin's NumPy reference stands in for it
                self.plugin_nms = efficient_nms_attributes(self.cfg.onnx_file)
                onnx_model = os.path.join(self.cfg.folder, GRAPH_BEFORE_NMS)
            self.runner = OnnxRuntimeRunner(onnx_model)
        else:
            from ..device.tensorrt.runner import TensorRTRunner
            self.runner = TensorRTRunner(self.cfg.engine_file)
        self.infer_seconds = 0.0

    def __enter__(self):
        self.runner.activate()
        return self

    def __exit__(self, *exc):
        self.runner.deactivate()

    def detect(self, frame_rgb):
        c = self.cfg
        x, scale = c.network_input(frame_rgb)
        if c.batch_size > 1:  # nvinfer fills the batch from other streams; one stream here: pad with copies
            x = np.repeat(x, c.batch_size, 0)
        t = time.perf_counter()
        out = {name: v[0] for name, v in self.runner.infer({"input": x}).items()}
        self.infer_seconds += time.perf_counter() - t
        if self.plugin_nms is not None:  # what TensorRT's EfficientNMS_TRT node would output
            a = self.plugin_nms
            out = efficient_nms_outputs(out["boxes"], out["scores"], a["score_threshold"], a["iou_threshold"],
                                        a["max_output_boxes"])
        return c.detections(out, scale, self.parser)
