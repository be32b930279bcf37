"""export.py's work as a library: checkpoint -> folded deploy graph -> ONNX -> parity -> the bundle folder.

The bundle is written into a temporary sibling folder and renamed into place at the end, so a failed export
leaves nothing half-written. Host-side.
"""
import json
import logging
import os
import shutil
import tempfile
import time

import numpy as np

from .configs import DetectionSettings, app_config_text, infer_config_text
from .device_files import DEVICE_MODULES
from .errors import InputFileError, OutputExistsError, ParityError
from .fileio import atomic_write_text, make_public
from .meta import BundleMeta
from .naming import engine_file_name

log = logging.getLogger(__name__)
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class ExportOptions(object):
    def __init__(self, model_path, output_dir="bundle", labels=None, image_mean=None, image_std=None, arch=None,
                 color="rgb", fold="exact", layout="boxes_scores", opset=13, batch_size=1, dynamic_batch=False,
                 precision="fp16", simplify=True, trt_version="8.2", force=False, video=None,
                 settings=None, preprocess_min_agreement=0.8, parity_images=None):
        self.model_path, self.output_dir = model_path, output_dir
        self.labels, self.image_mean, self.image_std, self.arch = labels, image_mean, image_std, arch
        self.color, self.fold, self.layout, self.opset = color, fold, layout, int(opset)
        self.batch_size, self.dynamic_batch, self.precision = int(batch_size), bool(dynamic_batch), precision
        self.simplify, self.trt_version, self.force, self.video = simplify, trt_version, force, video
        self.settings = settings or DetectionSettings()
        self.preprocess_min_agreement = float(preprocess_min_agreement)
        self.parity_images = parity_images


def _prepare_output(path, force):
    path = os.path.abspath(path)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)) and not force:
        raise OutputExistsError("{} already exists and is not empty: pass --force to replace it".format(path))
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", suffix=".partial", dir=parent)
        make_public(tmp, directory=True)
        return tmp
    except OSError as e:
        raise InputFileError("cannot write the bundle under {}: {}".format(parent, e.strerror or e))


def _commit_output(tmp, path):
    path = os.path.abspath(path)
    old = None
    if os.path.exists(path):
        old = path + ".old-" + str(os.getpid())
        os.rename(path, old)
    os.rename(tmp, path)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _video_info(video):
    import cv2
    cap = cv2.VideoCapture(video)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    if w <= 0 or h <= 0:
        raise InputFileError("cannot read the video {} (no frames or unknown codec)".format(video))
    return w, h


def _copy_device_side(dst):
    for rel in DEVICE_MODULES:
        src = os.path.join(HERE, rel)
        if os.path.exists(src):
            os.makedirs(os.path.dirname(os.path.join(dst, "edgeexport", rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dst, "edgeexport", rel))
    parser_src = os.path.join(REPO, "jetson", "parser")
    if os.path.isdir(parser_src):
        shutil.copytree(parser_src, os.path.join(dst, "parser"), ignore=shutil.ignore_patterns("build*", "*.so"))
    req = os.path.join(REPO, "requirements-device.txt")
    if os.path.exists(req):
        shutil.copy2(req, os.path.join(dst, "requirements-device.txt"))


def export_bundle(opt, echo=print):
    """Run the whole export. Returns a dict summary; raises EdgeExportError subclasses on bad input or parity."""
    import torch
    from .checkpoint import load_model
    from .deploy import ReferenceModel, build_deploy_model
    from .export_parity import export_parity, fixture_images, fold_error, preprocessing_parity
    from .onnx_export import append_efficient_nms, export_onnx_bytes, finalize_onnx, simplify, write_onnx
    from .preprocess import stretch_to_network
    from .runners.onnxrt import OnnxRuntimeRunner

    t0 = time.perf_counter()
    timings = {}
    if opt.video and not os.path.isfile(opt.video):
        raise InputFileError("video not found: {}".format(opt.video))
    model, mmeta, _ = load_model(opt.model_path, opt.labels, opt.image_mean, opt.image_std, opt.arch)
    tmp = _prepare_output(opt.output_dir, opt.force)
    try:
        torch.set_grad_enabled(False)
        reference = ReferenceModel(model)
        # efficient_nms = the boxes_scores graph + TensorRT's NMS plugin node appended to it
        graph_layout = "boxes_scores" if opt.layout == "efficient_nms" else opt.layout
        deploy = build_deploy_model(model, mmeta, opt.fold, opt.color, graph_layout)
        num_anchors = int(deploy.anchors.shape[0])
        meta = BundleMeta(mmeta, opt.color, opt.fold, opt.layout, opt.opset, opt.batch_size, opt.dynamic_batch,
                          num_anchors, "model.onnx", "", opt.precision, max_detections=opt.settings.topk)
        timings["load_and_fold_s"] = time.perf_counter() - t0

        t = time.perf_counter()
        h, w = mmeta.input_size
        proto = export_onnx_bytes(deploy, [opt.batch_size, 3, h, w], deploy.output_names, opt.opset, opt.dynamic_batch)
        simplified = False
        if opt.simplify:
            proto, simplified = simplify(proto)
        host_graph = os.path.join(tmp, "model.onnx")
        if opt.layout == "efficient_nms":
            # ONNX Runtime cannot run a TensorRT plugin: parity runs on the graph up to the plugin's inputs.
            host_graph = os.path.join(tmp, ".host_graph.onnx")
            write_onnx(host_graph, proto.SerializeToString())
            s = opt.settings
            proto = append_efficient_nms(proto, mmeta.num_classes, s.pre_cluster_threshold, s.nms_iou_threshold,
                                         s.topk)
        meta_for_onnx = {"edgeexport.model_json": meta.to_dict()}
        data = finalize_onnx(proto, meta_for_onnx, opt.opset, opt.trt_version)
        meta.onnx_sha256 = write_onnx(os.path.join(tmp, "model.onnx"), data)
        timings["onnx_s"] = time.perf_counter() - t

        # Parity, level 1 (the export) and level 2 (the preprocessing).
        t = time.perf_counter()
        images = opt.parity_images if opt.parity_images is not None else fixture_images(mmeta.labels)
        runner_batch = 1 if opt.dynamic_batch else opt.batch_size
        with OnnxRuntimeRunner(host_graph) as runner:
            inputs, expected, report = export_parity(reference, runner, meta, images, opt.settings, runner_batch)
            pre = preprocessing_parity(model, runner, meta, images, opt.settings, runner_batch)
        if opt.layout == "efficient_nms":
            os.unlink(host_graph)
        small = np.stack([stretch_to_network(im, w, h, 1) for im in images])
        exact = build_deploy_model(model, mmeta, "exact", opt.color, "boxes_scores")
        errors = {"exact": fold_error(reference, exact, meta, small, BundleMeta(mmeta, opt.color, "exact").offsets)}
        if opt.fold == "mean_into_bias":
            inexact = build_deploy_model(model, mmeta, "mean_into_bias", opt.color, "boxes_scores")
            errors["mean_into_bias"] = fold_error(reference, inexact, meta, small, [0.0, 0.0, 0.0])
        timings["parity_s"] = time.perf_counter() - t

        os.makedirs(os.path.join(tmp, "parity"))
        np.save(os.path.join(tmp, "parity", "inputs.npy"), inputs.astype(np.float32))
        np.savez(os.path.join(tmp, "parity", "expected.npz"), **expected)
        parity = {"export": report.to_dict(), "preprocessing": pre, "fold_relative_error": errors,
                  "settings": vars(opt.settings), "images": len(images)}
        atomic_write_text(os.path.join(tmp, "parity", "report.json"), json.dumps(parity, indent=1) + "\n")
        table = report.table("export parity: original PyTorch vs ONNX Runtime, same 8-bit network-size images" + (
            "\n  (graph up to the EfficientNMS_TRT node, which only TensorRT runs)" if opt.layout == "efficient_nms"
            else ""))
        pre_line = ("preprocessing parity: torchvision float resize vs nvinfer 8-bit stretch: {matched} matched, "
                    "{missing} missing, {extra} extra ({agreement:.1%} agreement, IoU >= {match_iou})".format(**pre))
        fold_lines = ["fold error vs the original, fp32, {} fold: ".format(k) + "; ".join(
            "{} norm-rel {:.2e} max-rel {:.2e} (fp32 noise floor {:.2e})".format(
                o, v[o]["norm_rel"], v[o]["max_rel"], v[o]["noise_max_rel"]) for o in ("boxes", "scores"))
            for k, v in errors.items()]
        atomic_write_text(os.path.join(tmp, "parity", "report.txt"), "\n".join([table, pre_line] + fold_lines) + "\n")

        # Labels, metadata, configs, device-side code, README.
        atomic_write_text(os.path.join(tmp, "labels.txt"), "\n".join(mmeta.labels) + "\n")
        meta.extra = {"simplified": simplified, "trt_version_checked": opt.trt_version,
                      "settings": vars(opt.settings), "export_seconds": None}
        frame_w, frame_h, uri = 1280, 720, "file://input.mp4"
        if opt.video:
            frame_w, frame_h = _video_info(opt.video)
            name = "input" + (os.path.splitext(opt.video)[1] or ".mp4")
            shutil.copy2(opt.video, os.path.join(tmp, name))
            uri = "file://" + name
        atomic_write_text(os.path.join(tmp, "infer_config.txt"), infer_config_text(meta, opt.settings))
        atomic_write_text(os.path.join(tmp, "app_config.txt"), app_config_text(frame_w, frame_h, uri))
        atomic_write_text(os.path.join(tmp, "app_config_fps.txt"), app_config_text(frame_w, frame_h, uri, True))
        _copy_device_side(tmp)
        engine = engine_file_name("model.onnx", opt.batch_size, opt.precision)
        atomic_write_text(os.path.join(tmp, "README.md"), bundle_readme(meta, engine, opt, uri))
        timings["total_s"] = time.perf_counter() - t0
        meta.extra["export_seconds"] = round(timings["total_s"], 2)
        meta.save(os.path.join(tmp, "model.json"))

        echo(table)
        echo(pre_line)
        for line in fold_lines:
            echo(line)
        if not report.ok:
            raise ParityError("export parity failed (see the table above; nothing was written)")
        if pre["agreement"] < opt.preprocess_min_agreement:
            raise ParityError("preprocessing parity {:.1%} is below --preprocess-min-agreement {:.0%}".format(
                pre["agreement"], opt.preprocess_min_agreement))
        _commit_output(tmp, opt.output_dir)
        tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"bundle": os.path.abspath(opt.output_dir), "meta": meta, "report": report, "preprocessing": pre,
            "fold_error": errors, "timings": timings, "engine_file": engine}


def bundle_readme(meta, engine, opt, uri):
    m = meta.model
    return """# edgeexport bundle: {arch}, {k} classes

Written by `export.py` from `{src}`. Everything here is derived from `model.json`; re-export instead of editing.

| | |
|---|---|
| input | `input` float32 {ishape}, {color} pixels minus offsets {offsets} |
| outputs | {outputs} |
| normalisation | fold `{fold}`: offsets = 255*mean, net-scale-factor = 1, 1/(255*std) inside the first conv |
| ONNX | opset {opset}, sha256 `{sha}` |
| engine nvinfer looks for | `{engine}` |

## On the Jetson (JetPack 4.6.x: Python 3.6, TensorRT 8.2, DeepStream 6.0.1; or newer)

```bash
# 1. on the host: copy this folder
scp -r {bundle} jetson:~/{bundle_name}
# 2. on the Jetson
cd ~/{bundle_name}
pip3 install -r requirements-device.txt             # numpy, pycuda (TensorRT comes with JetPack)
cmake -S parser -B parser/build -DCMAKE_BUILD_TYPE=Release && cmake --build parser/build -j4
python3 -m edgeexport.build_engine . --{precision}           # writes {engine}
python3 -m edgeexport.parity . --backend tensorrt    # TensorRT vs PyTorch's own numbers (parity/)
cp /path/to/your/clip.mp4 {video}                     # or edit uri= in app_config.txt
deepstream-app -c app_config.txt                     # annotated video -> out.mp4
deepstream-app -c app_config_fps.txt                 # FPS (fakesink, sync=0); look for **PERF lines
```
""".format(arch=m.arch, k=m.num_classes, src=os.path.basename(opt.model_path), ishape=meta.input_shape,
           color=meta.color_format.upper(), offsets=[round(o, 3) for o in meta.offsets],
           outputs=", ".join("`{}` {}".format(k, v) for k, v in sorted(meta.output_shapes().items())),
           fold=meta.fold, opset=meta.opset, sha=meta.onnx_sha256 or "(see model.json)", engine=engine,
           bundle=opt.output_dir, bundle_name=os.path.basename(os.path.abspath(opt.output_dir)),
           precision=opt.precision, video=uri[len("file://"):])
