"""Check a backend against the bundle's fixtures (the original PyTorch model's own fp32 numbers).

    python -m edgeexport.parity BUNDLE [--backend tensorrt|onnxruntime] [--engine FILE] [--precision fp16]

Prints a table (max error per output; detections matched / missing / extra) and exits 1 out of tolerance.
Device-side: Python 3.6, numpy, and tensorrt + pycuda for the TensorRT backend; no torch, no onnx.
"""
import argparse
import json
import os

import numpy as np

from .cli import run_cli
from .compare import compare_outputs
from .configs import DetectionSettings
from .errors import InputFileError, ParityError
from .meta import BundleMeta
from .naming import engine_file_name


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser(description="Compare a backend with the bundle's PyTorch fixtures.",
                                add_help=add_help, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("bundle", help="the bundle folder written by export.py")
    p.add_argument("--backend", default="tensorrt", choices=["tensorrt", "onnxruntime"])
    p.add_argument("--engine", help="the .engine file (default: the name nvinfer uses, beside model.onnx)")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"],
                   help="tolerances to judge by (default: fp32 for onnxruntime, the engine's precision for tensorrt)")
    p.add_argument("--pre-cluster-threshold", type=float, default=None, help="default: the bundle's")
    p.add_argument("--json", help="also write the report here")
    return p


def load_fixtures(bundle):
    try:
        inputs = np.load(os.path.join(bundle, "parity", "inputs.npy"))
        expected = dict(np.load(os.path.join(bundle, "parity", "expected.npz")))
    except (IOError, OSError, ValueError) as e:
        raise InputFileError("cannot read the parity fixtures in {}/parity: {}; re-export the bundle".format(bundle, e))
    return inputs, expected


def run_backend(runner, inputs, batch_size):
    outs = {}
    for i in range(0, len(inputs), batch_size):
        chunk = inputs[i:i + batch_size]
        real = len(chunk)
        if real < batch_size:  # a static-batch engine: pad with copies, drop their outputs
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - real, 0)])
        for k, v in runner.infer({"input": chunk}).items():
            outs.setdefault(k, []).append(np.asarray(v)[:real])
    return {k: np.concatenate(v) for k, v in outs.items()}


def main(args):
    meta = BundleMeta.load(os.path.join(args.bundle, "model.json"))
    inputs, expected = load_fixtures(args.bundle)
    batch = 1 if meta.dynamic_batch else meta.batch_size
    plugin_nms = None
    if args.backend == "onnxruntime":
        from .runners.onnxrt import OnnxRuntimeRunner
        onnx_model = os.path.join(args.bundle, meta.onnx_file)
        if meta.layout == "efficient_nms":  # a host check: the plugin is emulated, the graph before it is run
            from .onnx_export import host_runnable_graph
            onnx_model, plugin_nms = host_runnable_graph(onnx_model)
        runner = OnnxRuntimeRunner(onnx_model)
        precision = args.precision or "fp32"
    else:
        engine = args.engine or os.path.join(args.bundle, engine_file_name(meta.onnx_file, meta.batch_size,
                                                                           meta.precision))
        if not os.path.isfile(engine):
            raise InputFileError("engine not found: {}; build it first: python3 -m edgeexport.build_engine {}".format(
                engine, args.bundle))
        from .runners.tensorrt_runner import TensorRTRunner
        runner = TensorRTRunner(engine)
        precision = args.precision or meta.precision
    settings = DetectionSettings.from_dict(meta.extra.get("settings"))
    pre = args.pre_cluster_threshold if args.pre_cluster_threshold is not None else settings.pre_cluster_threshold
    with runner:
        got = run_backend(runner, inputs, batch)
    if plugin_nms is not None:
        from .compare import to_efficient_nms
        got = to_efficient_nms(got, plugin_nms["score_threshold"], plugin_nms["iou_threshold"],
                               plugin_nms["max_output_boxes"])
    h, w = meta.model.input_size
    report = compare_outputs(expected, got, w, h, precision, pre, settings.nms_iou_threshold, settings.topk)
    print(report.table("parity: {} vs PyTorch fixtures ({} images)".format(args.backend, len(inputs))))
    if args.json:
        from .fileio import atomic_write_text
        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=1) + "\n")
    if not report.ok:
        raise ParityError("{} is out of {} tolerance against the PyTorch fixtures".format(args.backend, precision))
    return 0


if __name__ == "__main__":
    run_cli(get_args_parser, main)
