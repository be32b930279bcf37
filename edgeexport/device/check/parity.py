"""Check a backend against the bundle's fixtures (the original PyTorch model's own fp32 numbers; for INT8 from the
bundle's Q/DQ graph, ONNX Runtime's INT8 outputs of that graph).

    python3 -m edgeexport.parity BUNDLE [--backend tensorrt|onnxruntime] [--engine FILE] [--precision fp16]
    python3 -m edgeexport.parity BUNDLE --dump DIR      (DIR: what `deepstream_app --dump DIR N` saved)

Prints a table (max error per output; detections matched / missing / extra) and exits 1 out of tolerance.
Device-side: Python 3.6, numpy, and tensorrt + pycuda for the TensorRT backend; no torch, no onnx.
"""
import json
import os

import numpy as np

from ..cli import ArgumentParser, probability, run_cli
from ..errors import InputFileError, ParityError
from ..outputs import RunOutputs
from ..postprocess import NMS_CANDIDATE_CAP
from ..runners import get_runner
from .compare import compare_outputs, to_efficient_nms


def run_backend(runner, inputs, batch_size):
    """Run ``inputs`` through an active runner ``batch_size`` at a time; returns the concatenated outputs."""
    outs = {}
    for i in range(0, len(inputs), batch_size):
        chunk = inputs[i:i + batch_size]
        real = len(chunk)
        if real < batch_size:  # a static-batch engine: pad with copies, drop their outputs
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - real, 0)])
        for k, v in runner.infer({"input": chunk}).items():
            outs.setdefault(k, []).append(np.asarray(v)[:real])
    return {k: np.concatenate(v) for k, v in outs.items()}


def qdq_reference(bundle, precision):
    """Whether ``precision`` on ``bundle`` is judged against its Q/DQ graph's own outputs: INT8 where the bundle has
    the twin (build_engine --int8 builds from it on every TensorRT). Its quantization error is then the graph's, known
    and measured at export (the int8 row); what is left to check is that the engine computes that graph."""
    return precision == "int8" and bool(bundle.meta.onnx_int8_file)


def check_bundle(bundle, runner, precision="fp32", threshold=None):
    """Run the bundle's fixture inputs through ``runner`` (active) and compare with the original model's outputs,
    detections clustered with the bundle's settings at ``threshold`` (default: the fixtures'). ``bundle``: a
    Bundle. ``runner``: over model.onnx, the engine, or (efficient_nms, ONNX Runtime) the graph before the NMS
    node, whose outputs then go through the plugin's NumPy reference. INT8 on a bundle with the Q/DQ twin compares
    with the twin's ONNX Runtime outputs, by the int8-qdq tolerances (compare.py). Returns a ParityReport."""
    meta, fixtures = bundle.meta, bundle.fixtures
    if qdq_reference(bundle, precision):
        fixtures, precision = bundle.int8_fixtures, "int8-qdq"
    settings = meta.settings
    if threshold is None:
        threshold = settings.pre_cluster_threshold if fixtures.threshold is None else fixtures.threshold
    if meta.layout == "efficient_nms":  # the plugin drops everything below its own score_threshold
        threshold = max(threshold, settings.pre_cluster_threshold)
    got = run_backend(runner, fixtures.inputs, 1 if meta.dynamic_batch else meta.batch_size)
    # The plugin's candidate cap is the running GPU's on TensorRT; the reference uses the same.
    cap = getattr(runner, "nms_candidate_cap", NMS_CANDIDATE_CAP)
    if meta.layout == "efficient_nms" and "scores" in got:  # what TensorRT's EfficientNMS_TRT node would output
        got = to_efficient_nms(got, settings.pre_cluster_threshold, settings.nms_iou_threshold, meta.max_output_boxes,
                               cap)
    h, w = meta.model.input_size
    return compare_outputs(fixtures.expected, got, w, h, precision, settings, threshold, nms_candidate_cap=cap)


DUMP_FRAME_SUFFIX, DUMP_OUTPUTS_SUFFIX = "_rgba.npy", "_outputs.npz"


def read_dump(folder):
    """[(name, RGB frame, {output: array})] of a ``deepstream_app --dump`` folder, in name order."""
    try:
        names = sorted(n[:-len(DUMP_FRAME_SUFFIX)] for n in os.listdir(folder) if n.endswith(DUMP_FRAME_SUFFIX))
    except (IOError, OSError) as e:
        raise InputFileError("cannot read --dump {}: {}".format(folder, e.strerror or e))
    if not names:
        raise InputFileError("{} holds no *{} frames: make it with python3 -m edgeexport.deepstream_app BUNDLE "
                             "--source ... --dump {} N".format(folder, DUMP_FRAME_SUFFIX, folder))
    out = []
    for name in names:
        frame_path = os.path.join(folder, name + DUMP_FRAME_SUFFIX)
        try:
            frame = np.load(frame_path)
            with np.load(os.path.join(folder, name + DUMP_OUTPUTS_SUFFIX)) as z:
                outputs = {k: z[k] for k in z.files}
        except Exception as e:  # anything that is not a readable frame + outputs pair is "not a dump", by design
            raise InputFileError("{} is not a readable dump frame with its outputs ({})".format(
                frame_path, str(e).splitlines()[0] if str(e) else type(e).__name__))
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] not in (3, 4):
            raise InputFileError("{} is {} {}, not an RGBA frame".format(frame_path, frame.dtype, frame.shape))
        out.append((name, np.ascontiguousarray(frame[..., :3]), outputs))
    return out


def check_dump(bundle, folder, runner, precision, threshold=None):
    """DeepStream's own outputs (``deepstream_app --dump``: the frames nvinfer received, its raw output tensors)
    against ``runner`` (ONNX Runtime over the bundle's graph) on the same frames, prepared as infer_config.txt
    says nvinfer prepares them. What differs is what the board does differently: nvinfer's real scaling, its
    conversion of the RGBA frames the dump feeds it (not the NV12 of a pipeline without --dump) to RGB/BGR, and the
    engine's precision. Returns a ParityReport."""
    from ..deepstream.nvinfer_config import NvInferConfig
    meta, settings = bundle.meta, bundle.meta.settings
    cfg = NvInferConfig(bundle.infer_config_path)
    frames = read_dump(folder)
    inputs = np.concatenate([cfg.network_input(f)[0] for _, f, _ in frames])
    reference = run_backend(runner, inputs, 1 if meta.dynamic_batch else meta.batch_size)
    dumped = {}
    for name, _, outputs in frames:
        missing = sorted(set(meta.output_names) - set(outputs))
        if missing:
            raise InputFileError("{}{} lacks outputs {} (it has {})".format(
                os.path.join(folder, name), DUMP_OUTPUTS_SUFFIX, missing, sorted(outputs)))
        for k in meta.output_names:
            dumped.setdefault(k, []).append(outputs[k])
    candidate = {k: np.stack(v) for k, v in dumped.items()}
    if threshold is None:
        threshold = settings.pre_cluster_threshold
    h, w = meta.model.input_size
    return compare_outputs(reference, candidate, w, h, precision, settings, threshold,
                           num_classes=meta.model.num_classes)


def get_args_parser(add_help=True):
    p = ArgumentParser(description="Compare a backend with the bundle's PyTorch fixtures.", add_help=add_help)
    p.add_argument("bundle", help="the bundle folder written by export.py")
    p.add_argument("--backend", default="tensorrt", choices=["tensorrt", "onnxruntime"])
    p.add_argument("--engine", help="the .engine file (default: the name nvinfer uses, beside model.onnx)")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"],
                   help="tolerances to judge by (default: fp32 for onnxruntime, the engine's precision for tensorrt)")
    p.add_argument("--pre-cluster-threshold", type=probability, default=None,
                   help="score threshold of the detections compared (default: the one the fixtures were made at)")
    p.add_argument("--json", help="also write the report here")
    p.add_argument("--dump", metavar="DIR",
                   help="instead: DeepStream's own outputs saved by `deepstream_app --dump DIR N` against ONNX "
                        "Runtime on the same frames (measures nvinfer's real scaling of the RGBA frames the dump "
                        "feeds it and the engine's precision); "
                        "needs onnxruntime where it runs (or copy DIR to the host)")
    return p


def main(args):
    from ..deepstream.bundle_check import open_checked
    bundle = open_checked(args.bundle)  # the deployed pipeline: config, labels and graph against model.json
    meta = bundle.meta
    bundle.fixtures  # a bundle without readable fixtures fails before any runtime starts
    outputs = RunOutputs(reads=[args.engine, args.dump], bundle=bundle)
    outputs.file(args.json, "--json")
    if args.dump:
        return main_dump(args, bundle, outputs)
    if args.backend == "onnxruntime":
        from ..runners.onnxruntime import OnnxRuntimeRunner
        precision = args.precision or "fp32"
        # with the Q/DQ twin, INT8 runs the twin, as an engine built from it would
        runner = OnnxRuntimeRunner(bundle.host_graph(int8=qdq_reference(bundle, precision)))
    else:
        engine = args.engine or bundle.configured_engine_path()
        if not os.path.isfile(engine):
            raise InputFileError("engine not found: {}; build it first: python3 -m edgeexport.build_engine {}".format(
                engine, args.bundle))
        runner = get_runner("tensorrt", engine, meta=meta)
        precision = args.precision or runner.precision or meta.precision
    with runner:
        report = check_bundle(bundle, runner, precision, args.pre_cluster_threshold)
    reference = ("ONNX Runtime's INT8 outputs of the Q/DQ graph" if qdq_reference(bundle, precision) else
                 "PyTorch fixtures")
    print(report.table("parity: {} vs {} ({} images)".format(args.backend, reference, len(bundle.fixtures.inputs))))
    if args.json:
        outputs.write_text(args.json, json.dumps(report.to_dict(), indent=1) + "\n")
    outputs.report()
    if not report.ok:
        raise ParityError("{} is out of {} tolerance against the {}{}".format(
            args.backend, report.precision, reference, "" if report.compared else " (no detection was compared)"))
    return 0


def main_dump(args, bundle, outputs):
    from ..runners.onnxruntime import OnnxRuntimeRunner
    runner = OnnxRuntimeRunner(bundle.host_graph())
    precision = args.precision or bundle.configured_precision()
    with runner:
        report = check_dump(bundle, args.dump, runner, precision, args.pre_cluster_threshold)
    print(report.table("parity: DeepStream's outputs ({}) vs ONNX Runtime on the same frames, prepared as nvinfer "
                       "is configured to".format(args.dump)))
    if args.json:
        outputs.write_text(args.json, json.dumps(report.to_dict(), indent=1) + "\n")
    outputs.report()
    if not report.ok:
        raise ParityError("DeepStream's outputs are out of {} tolerance against ONNX Runtime on the same frames{}: "
                          "nvinfer's scaling or colour conversion differs from infer_config.txt, or the engine's "
                          "precision costs more".format(precision, "" if report.compared else
                                                        " (no detection was compared)"))
    return 0


def cli(argv=None):
    run_cli(get_args_parser, main, argv)


if __name__ == "__main__":
    cli()
