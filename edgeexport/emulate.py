"""Run a bundle the way DeepStream would, on any host: a check before touching a Jetson.

    python -m edgeexport.emulate BUNDLE --input clip.mp4 --out annotated.mp4 --json detections.json

Reads infer_config.txt with GKeyFile; prepares each frame as nvinfer does (stretch with the configured
scaling-filter, colour order, offsets, net-scale-factor); runs ONNX Runtime (TensorRT with --backend tensorrt);
parses with the built C++ parser library (the .so DeepStream loads); clusters as cluster-mode=2 (pre-cluster
threshold, per-class NMS, topk); maps boxes back to the frame as nvinfer does; draws and writes the video.
Host-side (numpy, OpenCV, ctypes; onnxruntime).
"""
import argparse
import glob
import hashlib
import json
import os
import time

import numpy as np

from .cli import run_cli
from .errors import ConfigError, InputFileError
from .fileio import atomic_write_text
from .keyfile import KeyFile
from .postprocess import efficient_nms_reference, nms_cluster, scale_to_frame
from .preprocess import nvinfer_preprocess

PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230)]


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
        with open(self.labels_file) as f:
            self.labels = [line.strip() for line in f if line.strip()]

    @property
    def pre_thresholds(self):
        return [a["pre-cluster-threshold"] for a in self.class_attrs]


def _parser_sources_hash(folder):
    h = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            h.update(name.encode())
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def load_parser(cfg):
    """The parser .so the config names when it exists and loads here; else a host build of the bundle's own
    parser sources, kept in ~/.cache/edgeexport (never inside the bundle, whose parser/build is the Jetson's)."""
    from .parser_lib import ParserLibrary, build_parser
    shim = os.path.join(os.path.dirname(cfg.custom_lib), "libedgeexport_parser_shim.so")
    if os.path.isfile(cfg.custom_lib) and os.path.isfile(shim):
        try:
            return ParserLibrary(cfg.custom_lib, shim)
        except OSError:
            pass  # another architecture's build (the Jetson's): build for this host below
    src = os.path.join(cfg.folder, "parser")
    if not os.path.isfile(os.path.join(src, "CMakeLists.txt")):
        raise InputFileError("no parser library at {} and no parser sources in {}".format(cfg.custom_lib, src))
    cache = os.path.join(os.path.expanduser(os.environ.get("XDG_CACHE_HOME", "~/.cache")), "edgeexport",
                         "parser-" + _parser_sources_hash(src))
    lib = os.path.join(cache, "libnvdsparsebbox_edgeexport.so")
    if not os.path.isfile(lib):
        build_parser(src, cache)
    return ParserLibrary(lib)


def iter_frames(source):
    """(index, RGB uint8 frame) from a video file, or from a folder / glob of images."""
    import cv2
    if os.path.isdir(source) or any(ch in source for ch in "*?["):
        files = sorted(glob.glob(os.path.join(source, "*") if os.path.isdir(source) else source))
        files = [f for f in files if f.lower().endswith((".jpg", ".jpeg", ".png", ".bmp"))]
        if not files:
            raise InputFileError("no images in {}".format(source))
        for i, f in enumerate(files):
            img = cv2.imread(f, cv2.IMREAD_COLOR)
            if img is None:
                raise InputFileError("cannot read image {}".format(f))
            yield i, img[..., ::-1].copy()
        return
    if not os.path.isfile(source):
        raise InputFileError("input not found: {}".format(source))
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise InputFileError("cannot open video {}".format(source))
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        yield i, frame[..., ::-1].copy()
        i += 1
    cap.release()
    if i == 0:
        raise InputFileError("no frames could be decoded from {}".format(source))


def draw(frame_rgb, dets, labels):
    import cv2
    img = np.ascontiguousarray(frame_rgb[..., ::-1])
    for b, s, c in zip(dets.boxes, dets.scores, dets.classes):
        color = PALETTE[int(c) % len(PALETTE)][::-1]
        x1, y1, x2, y2 = [int(round(v)) for v in b]
        cv2.rectangle(img, (x1, y1), (x2, y2), color, 2)
        text = "{} {:.2f}".format(labels[int(c)] if int(c) < len(labels) else int(c), float(s))
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(img, (x1, max(0, y1 - th - 4)), (x1 + tw + 2, max(th + 4, y1)), color, -1)
        cv2.putText(img, text, (x1 + 1, max(th + 1, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return img


class Emulator(object):
    """One frame in, the detections DeepStream would attach to it out (frame pixels)."""

    def __init__(self, bundle, backend="onnxruntime"):
        self.cfg = NvInferConfig(os.path.join(bundle, "infer_config.txt"))
        self.parser = load_parser(self.cfg)
        self.plugin_nms = None
        if backend == "onnxruntime":
            from .runners.onnxrt import OnnxRuntimeRunner
            onnx_model = self.cfg.onnx_file
            if self.cfg.parse_func == "NvDsInferParseEdgeExportNMS":
                from .onnx_export import host_runnable_graph
                onnx_model, self.plugin_nms = host_runnable_graph(onnx_model)
                if self.plugin_nms is None:
                    raise ConfigError("{} uses the NMS parser but has no EfficientNMS_TRT node".format(
                        self.cfg.onnx_file))
            self.runner = OnnxRuntimeRunner(onnx_model)
        else:
            from .runners.tensorrt_runner import TensorRTRunner
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


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser(description="Emulate the DeepStream pipeline of a bundle on this host.",
                                add_help=add_help, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("bundle")
    p.add_argument("--input", required=True, help="a video file, a folder of images, or a glob")
    p.add_argument("--out", help="annotated video to write (.mp4)")
    p.add_argument("--json", help="per-frame detections to write")
    p.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "tensorrt"])
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0: all)")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(args):
    import cv2
    from tqdm import tqdm
    frames_json, writer, tmp_out = [], None, None
    t0 = time.perf_counter()
    n = 0
    with Emulator(args.bundle, args.backend) as emu:
        try:
            for i, frame in tqdm(iter_frames(args.input), desc="emulate", unit="frame",
                                 disable=args.no_progress or None):
                if args.max_frames and i >= args.max_frames:
                    break
                dets = emu.detect(frame)
                frames_json.append({"frame": i, "objects": dets.to_list(emu.cfg.labels)})
                if args.out:
                    if writer is None:
                        tmp_out = os.path.join(os.path.dirname(os.path.abspath(args.out)),
                                               "." + os.path.basename(args.out) + ".partial.mp4")
                        h, w = frame.shape[:2]
                        writer = cv2.VideoWriter(tmp_out, cv2.VideoWriter_fourcc(*"mp4v"), 15, (w, h))
                        if not writer.isOpened():
                            raise InputFileError("cannot write video {}".format(args.out))
                    writer.write(draw(frame, dets, emu.cfg.labels))
                n += 1
        except BaseException:
            if writer is not None:
                writer.release()
                os.unlink(tmp_out)
            raise
        infer_s = emu.infer_seconds
    if writer is not None:
        writer.release()
        os.replace(tmp_out, args.out)
    wall = time.perf_counter() - t0
    summary = {"frames": n, "fps_end_to_end": n / wall if wall else 0.0,
               "fps_inference_only": n / infer_s if infer_s else 0.0, "backend": args.backend,
               "detections": sum(len(f["objects"]) for f in frames_json)}
    if args.json:
        atomic_write_text(args.json, json.dumps({"summary": summary, "frames": frames_json}, indent=1) + "\n")
    print("emulated {frames} frames with {backend}: {fps_end_to_end:.1f} FPS end to end, {fps_inference_only:.1f} "
          "FPS inference only, {detections} detections".format(**summary))
    if args.out:
        print("annotated video: {}".format(args.out))
    return 0


if __name__ == "__main__":
    run_cli(get_args_parser, main)
