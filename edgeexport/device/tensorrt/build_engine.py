"""Build the TensorRT engine of a bundle, under the exact file name nvinfer looks for, on the device.

    python3 -m edgeexport.build_engine BUNDLE [--fp16|--fp32|--int8] [--batch N] [--workspace MB]
        [--timing-cache FILE] [--dla-core N] [--calib-images DIR] [--force]

Checks model.onnx against model.json's sha256, parses it (every parser error printed), builds (a Jetson Nano
takes 10+ minutes: a heartbeat shows it is alive), checks the engine's inputs and outputs against model.json,
writes the engine atomically as ``<onnx>_b<batch>_gpu<id>_<precision>.engine`` beside the ONNX with a record of
what it was built from (``<engine>.json``), and keeps infer_config.txt pointing at it. An engine whose record
matches is not rebuilt; one whose record does not (another model.onnx, TensorRT, GPU, precision, ...) is, with
the reason printed. Device-side: Python 3.6, numpy, tensorrt, pycuda (or cuda-python); no torch, no onnx.
"""
import os

from ..bundle import file_sha256
from ..deepstream.bundle_check import open_checked
from ..cli import ArgumentParser, batch_size, int_range, iterations, non_negative_float, run_cli
from ..deepstream.infer_config import infer_config_text
from ..errors import EngineBuildError, InputFileError, UsageError
from ..fileio import atomic_write_bytes, atomic_write_text, remove_stale_temporaries
from ..naming import engine_file_name
from . import api
from .builder import QDQ_EXPORT
from .engine_record import BUILD_KEYS, EngineRecord, new_record, record_path

DEFAULT_MAX_MAP_DROP = 1.0  # mAP points an INT8 engine may lose against the fp32 graph (issue: INT8)

def get_args_parser(add_help=True):
    p = ArgumentParser(description="Build a bundle's TensorRT engine under nvinfer's own file name.",
                       add_help=add_help)
    p.add_argument("target", help="the bundle folder (or its model.onnx; model.json must lie beside it)")
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--fp16", dest="precision", action="store_const", const="fp16", help="(default)")
    prec.add_argument("--fp32", dest="precision", action="store_const", const="fp32")
    prec.add_argument("--int8", dest="precision", action="store_const", const="int8",
                      help="from the bundle's Q/DQ graph (export --precision int8 --calib-data) on every TensorRT; "
                           "without one, TensorRT's calibrator (< 11; needs --calib-images, or a calibration cache "
                           "made for this model); not on a Jetson Nano")
    p.add_argument("--batch", type=batch_size, help="batch size (default: the bundle's; max batch for a dynamic "
                                                       "ONNX)")
    p.add_argument("--workspace", type=int_range(1, 1 << 20),
                   help="builder workspace in MiB (default: a quarter of the GPU memory free now, 64-1024)")
    p.add_argument("--timing-cache", help="read and update this TensorRT timing cache (faster rebuilds)")
    p.add_argument("--dla-core", type=int_range(0, 1),
                   help="build for this DLA core (0 or 1: the most DLA cores a Jetson has), GPU fallback on")
    p.add_argument("--gpu-id", type=int_range(0, 63), default=0)
    p.add_argument("--calib-images", help="INT8: a folder of representative images")
    p.add_argument("--max-map-drop", type=non_negative_float, metavar="POINTS",
                   help="INT8: refuse (and remove) an engine whose mAP on the bundle's validation set falls more "
                        "than this many points below the fp32 graph's on the same path (default {:g}; needs "
                        "export --val-data and pycocotools)".format(DEFAULT_MAX_MAP_DROP))
    p.add_argument("--calib-batches", type=iterations, default=32,
                   help="INT8: at most this many calibration batches")
    p.add_argument("--force", action="store_true", help="rebuild even if the engine matches its record")
    p.add_argument("--verbose", action="store_true", help="TensorRT's verbose log")
    return p


def check_engine_io(trt, runtime, plan, meta, batch):
    """The engine's tensors must be the bundle's contract: names, shapes (batch aside), float32 in and out."""
    engine = api.deserialize(trt, runtime, plan, "the engine just built")
    io = api.engine_io(trt, engine)
    got = {name: (is_in, tuple(shape), dtype) for name, is_in, shape, dtype in io}
    want = {meta.input_name: (True, tuple(meta.input_shape), "FLOAT")}
    dtypes = {"num_detections": "INT32", "detection_classes": "INT32"}
    for name, shape in meta.output_shapes().items():
        want[name] = (False, tuple(shape), dtypes.get(name, "FLOAT"))
    problems = []
    for name, (is_in, shape, dtype) in sorted(want.items()):
        if name not in got:
            problems.append("missing {} {!r}".format("input" if is_in else "output", name))
            continue
        g_in, g_shape, g_dtype = got[name]
        same_shape = len(g_shape) == len(shape) and all(a == b or b == -1 or (i == 0 and a in (-1, batch))
                                                        for i, (a, b) in enumerate(zip(g_shape, shape)))
        if g_in != is_in or not same_shape or g_dtype != dtype:
            problems.append("{!r}: engine has {} {} {}, model.json says {} {} {}".format(
                name, "input" if g_in else "output", list(g_shape), g_dtype, "input" if is_in else "output",
                list(shape), dtype))
    extra = sorted(set(got) - set(want))
    if extra:
        problems.append("unexpected tensors {}".format(extra))
    if problems:
        raise EngineBuildError("the engine does not match model.json: " + "; ".join(problems))
    return io


def resolve_target(target):
    """(bundle folder, Bundle checked whole) from a bundle folder or a file in it (its model.onnx)."""
    if os.path.isdir(target):
        folder = target
    elif os.path.isfile(target):
        folder = os.path.dirname(os.path.abspath(target))
        if not os.path.isfile(os.path.join(folder, "model.json")):
            raise InputFileError("{} has no model.json beside it: pass the bundle folder written by export.py".format(
                target))
    else:
        raise InputFileError("not found: {} (pass the bundle folder written by export.py)".format(target))
    # the whole bundle, as every command reads it: a graph, labels or config that disagrees with model.json would
    # give a 10-minute build (on a Nano) of something else than the model (deepstream.bundle_check)
    # a missing config is written from model.json; a GPU box without GLib builds (a Jetson with DeepStream has it)
    return folder, open_checked(folder, config_required=False, strict=False)


def explicit_int8(meta, precision):
    """INT8 from the bundle's Q/DQ twin (explicit quantization: the scales are in the graph), where it has one."""
    return precision == "int8" and bool(meta.onnx_int8_file)


def graph_for(trt, meta, folder, precision):
    """The ONNX to build from: the Q/DQ twin for INT8 wherever the bundle has one (every TensorRT: 8.x and 10.x read
    its scales with the INT8 flag set, 11.x from the strongly typed graph); the FP16 twin where TensorRT is strongly
    typed (11.x) and FP16 is asked for (the graph carries the precision there); else model.onnx (weak typing: the
    builder flag chooses). Their sha256 were checked with the bundle (resolve_target: bundle_check.check_files)."""
    if precision == "fp16" and api.strongly_typed(trt):
        if not meta.onnx_fp16_file:
            raise UsageError("TensorRT {} takes FP16 only from an FP16 ONNX, and this bundle has none (exported by "
                             "edgeexport {}): re-export it with this version, or build --fp32".format(
                                 trt.__version__, meta.written_by or "0.1"))
        path = os.path.join(folder, meta.onnx_fp16_file)
        # its sha256 was checked with the bundle (resolve_target: deepstream.bundle_check.check_files)
        return path
    return os.path.join(folder, meta.graph_for(precision))


def needs_fp32_nms(trt, meta, precision):
    """EfficientNMS_TRT in FP16 on TensorRT < 8.4 returns every score minus 1 (its half path adds 1 to sort on 10
    mantissa bits and its default scoreBits was 10 in 8.2: plugin/efficientNMSPlugin/efficientNMSParameters.h at
    tag 8.2.1, -1 from 8.4.1; WriteNMSResult subtracts the 1 again, efficientNMSInference.cu:126-128; field reports:
    NVIDIA/TensorRT #1758, Linaom1214/TensorRT-For-YOLO-Series #93, triple-mu/YOLOv8-TensorRT #21 on a Nano). The
    float path forces scoreBits = -1 (efficientNMSInference.cu:716), so the plugin layer is held in FP32."""
    return (meta.layout == "efficient_nms" and precision in ("fp16", "int8") and not api.strongly_typed(trt)
            and api.version(trt) < (8, 4, 0))


def main(args, trt=None, cuda=None):
    folder, bundle = resolve_target(args.target)
    meta = bundle.meta
    if args.timing_cache:  # read and written back: an output under the policy (device/outputs.py), checked first
        from ..outputs import RunOutputs
        RunOutputs(reads=[args.calib_images], bundle=bundle).file(args.timing_cache, "--timing-cache")
    precision = args.precision or meta.precision
    batch = int(args.batch or meta.batch_size)
    if args.dla_core is not None and precision == "fp32":
        # nvinfer builds FP32-on-DLA as FP16 with a warning (nvdsinfer_model_builder.cpp:1063-1067 @6.0.1) but
        # keeps "fp32" in the engine's name; DLA runs FP16 and INT8 only
        raise UsageError("DLA runs FP16 or INT8 only: build --fp16 or --int8 with --dla-core, or --fp32 without it")
    if not meta.dynamic_batch and batch != meta.batch_size:
        raise UsageError("the ONNX has a static batch of {}, got --batch {}: re-export with --batch-size {} or "
                         "--dynamic-batch".format(meta.batch_size, batch, batch))
    if trt is None:
        from .runner import import_tensorrt
        trt = import_tensorrt()
    from .builder import check_typing
    # INT8 on 11.x without a Q/DQ graph: refused before CUDA starts and before any record is read
    check_typing(trt, precision, explicit_int8(meta, precision))
    onnx_path = graph_for(trt, meta, folder, precision)
    own_cuda = cuda is None
    if own_cuda:  # a CUDA context on --gpu-id before the Builder, as NVIDIA's 8.2 samples make one
        from .cuda_memory import cuda_backend
        cuda = cuda_backend(args.gpu_id)
    try:
        return build(args, trt, cuda, folder, meta, precision, batch, onnx_path)
    finally:
        if own_cuda:
            cuda.close()


def build(args, trt, cuda, folder, meta, precision, batch, onnx_path):
    """main's work once TensorRT and CUDA are up: reuse or build the engine, record it, point the config at it."""
    onnx_file = os.path.basename(onnx_path)
    gpu = cuda.device_info()
    engine_name = engine_file_name(onnx_file, batch, precision, args.gpu_id, args.dla_core)
    engine_path = os.path.join(folder, engine_name)
    from .builder import EngineBuilder, default_workspace_mib
    workspace_mib = args.workspace or default_workspace_mib(gpu)
    nms_fp32 = needs_fp32_nms(trt, meta, precision)
    expected = {"onnx_file": onnx_file, "onnx_sha256": meta.graph_sha256(onnx_file), "tensorrt_version":
                trt.__version__, "gpu_name": gpu["name"], "compute_capability": gpu["compute_capability"],
                "precision": precision, "batch_size": batch, "dynamic_batch": meta.dynamic_batch,
                "layout": meta.layout, "dla_core": args.dla_core, "nms_fp32": nms_fp32}
    reasons = stale_reasons(engine_path, expected, args.workspace)
    calib_cache = os.path.join(folder, "calibration.cache")
    if not reasons and not args.force:
        print("engine up to date: {} (built from this {} by TensorRT {} for {}; --force rebuilds)".format(
            engine_path, onnx_file, trt.__version__, gpu["name"]))
        write_infer_config(folder, meta, precision, args.gpu_id, batch, onnx_file,
                           EngineRecord.load(engine_path)["workspace_mib"], args.dla_core, nms_fp32)
        return 0
    if reasons and os.path.exists(engine_path):
        print("rebuilding {}: {}".format(engine_name, "; ".join(reasons)))
    print("TensorRT {}: building {} ({}{}, batch {}{}, workspace {} MiB{}) on {}".format(
        trt.__version__, engine_name, precision,
        " from the Q/DQ graph: scales from export's calibration" if explicit_int8(meta, precision) else "", batch,
        ", dynamic" if meta.dynamic_batch else "", workspace_mib, ", EfficientNMS held in FP32" if nms_fp32 else "",
        gpu["name"]))
    max_drop = getattr(args, "max_map_drop", None)
    accuracy_check = int8_reference(folder, meta, max_drop is not None) if precision == "int8" else None
    explicit = explicit_int8(meta, precision)
    builder = EngineBuilder(trt, args.verbose)
    builder.check_precision(precision, explicit)
    calibrator = None
    if explicit and args.calib_images:
        print("note: --calib-images is not used: {} carries its INT8 scales (Q/DQ nodes, calibrated at export)".format(
            onnx_file))
    elif precision == "int8" and not explicit:
        if api.version(trt) >= (10, 1, 0):
            print("warning: TensorRT {} deprecated INT8 calibrators in 10.1 and 11.x removes them (\"Superseded by "
                  "explicit quantization\"): re-export with `{}` for an INT8 graph every version builds".format(
                      trt.__version__, QDQ_EXPORT))
        calibrator = int8_calibrator(trt, args, meta, batch, calib_cache, cuda)
    timing = None
    if args.timing_cache:  # an empty cache on the first run, so that one is created and written back
        timing = b""
        if os.path.isfile(args.timing_cache):
            with open(args.timing_cache, "rb") as f:
                timing = f.read()
    builder.parse(onnx_path)
    builder.configure(precision, workspace_mib << 20, meta.input_name, meta.input_shape, meta.dynamic_batch,
                      batch, args.dla_core, calibrator, timing, nms_fp32, explicit)
    try:
        plan = builder.build(workspace_mib)
        if calibrator is not None:
            calibrator.raise_if_failed()  # an error in a callback, kept out of TensorRT: no engine is written
        check_engine_io(trt, trt.Runtime(builder.logger), plan, meta, batch)
    except BaseException:
        if calibrator is not None:  # no engine: nor the calibration cache this build wrote
            calibrator.discard_cache()
        raise
    finally:
        if calibrator is not None:
            calibrator.release()
    # An earlier build killed while writing (Ctrl-C is cleaned up, a power cut is not) may have left its
    # temporary, as large as the engine, on the board's small disk.
    for name in remove_stale_temporaries(folder, [engine_name, os.path.basename(record_path(engine_path))]):
        print("removed {}, left by an interrupted earlier build".format(name))
    atomic_write_bytes(engine_path, plan)
    new_record(onnx_file, expected["onnx_sha256"], trt.__version__, gpu, precision, batch, meta.dynamic_batch,
               meta.layout, args.dla_core, nms_fp32, workspace_mib, file_sha256(engine_path)).save(engine_path)
    if accuracy_check is not None:
        check_int8_accuracy(folder, meta, engine_path, trt, cuda,
                            DEFAULT_MAX_MAP_DROP if max_drop is None else max_drop, accuracy_check)
    if args.timing_cache:
        data = builder.timing_cache_bytes()
        if data:
            atomic_write_bytes(args.timing_cache, data)
    write_infer_config(folder, meta, precision, args.gpu_id, batch, onnx_file, workspace_mib, args.dla_core,
                       nms_fp32)
    print("engine: {} ({:.1f} MB, built in {:.0f} s); infer_config.txt points at it".format(
        engine_path, len(plan) / 1e6, builder.build_seconds))
    # deepstream-app takes a file sink's output-file relative to where it runs (deepstream_config_file_parser.c
    # :1399-1402 @6.0.1): run it from the bundle, where the README says out.mp4 lands
    print("next: python3 -m edgeexport.parity {} --backend tensorrt && cd {} && deepstream-app -c app_config.txt".format(
        folder, folder))
    return 0


def int8_reference(folder, meta, limit_given=False):
    """The mAP an INT8 engine is held to: the nvinfer row export recorded on the bundle's validation set (the same
    path with the fp32 graph), or None when the bundle has no validation set (said, not silently skipped).
    Checked before the slow build: the set is readable and a mAP library is installed."""
    from ..check.coco_eval import scorer
    from ..check.evaluate import VALIDATION_DIR
    recorded = {r["backend"]: r for r in (meta.validation or {}).get("rows", [])}
    if "nvinfer" not in recorded or not os.path.isfile(os.path.join(folder, VALIDATION_DIR, "annotations.json")):
        if limit_given:
            raise UsageError("--max-map-drop needs the bundle's validation set: export with --val-data")
        print("note: this bundle has no validation set, so the INT8 engine's accuracy is not checked (export with "
              "--val-data to have it checked against --max-map-drop)")
        return None
    scorer()  # a missing mAP library fails now, not after a 10-minute build
    return recorded["nvinfer"]


def check_int8_accuracy(folder, meta, engine_path, trt, cuda, max_drop, reference):
    """Evaluate the built INT8 engine through nvinfer's path on the bundle's validation set; beyond ``max_drop``
    points below ``reference`` (the fp32 graph on the same path) the engine and its record are removed."""
    from ..bundle import Bundle
    from ..check.coco_eval import ValidationSet
    from ..check.eval_rows import NvInferRow
    from ..check.evaluate import VALIDATION_DIR, run_rows, table_rows
    from .runner import TensorRTRunner
    bundle = Bundle(folder)
    vdir = os.path.join(folder, VALIDATION_DIR)
    vset = ValidationSet.load(os.path.join(vdir, "annotations.json"))
    row = NvInferRow(bundle, meta.validation.get("score_threshold", 0.01),
                     runner=TensorRTRunner(engine_path, trt=trt, cuda=cuda, meta=meta))
    row.name = "tensorrt"
    detections, seconds, ids = run_rows([row], vset)
    got = table_rows(detections, seconds, vset, meta.model.labels, ids)[0]["map"]
    drop = 100.0 * (reference["map"] - got)
    if drop > max_drop:
        for path in (engine_path, record_path(engine_path)):
            if os.path.exists(path):
                os.unlink(path)
        raise EngineBuildError(
            "INT8 engine refused and removed: mAP {:.4f} on the bundle's {} validation images against {:.4f} with the "
            "fp32 graph on the same path, a drop of {:.2f} points > --max-map-drop {:g}: calibrate with more, more "
            "representative --calib-images, or build --fp16".format(got, len(ids), reference["map"], drop, max_drop))
    print("INT8 accuracy: mAP {:.4f} on {} validation images, {:.2f} points below the fp32 graph's {:.4f} "
          "(limit {:g})".format(got, len(ids), drop, reference["map"], max_drop))


def stale_reasons(engine_path, expected, workspace_mib=None):
    """Why the engine at ``engine_path`` cannot be reused for ``expected`` ([] when it can)."""
    if not os.path.isfile(engine_path):
        return ["no engine yet"]
    record = EngineRecord.load(engine_path)
    if record is None:
        return ["it has no build record ({}): its origin is unknown".format(os.path.basename(record_path(engine_path)))]
    reasons = record.mismatches(expected, BUILD_KEYS)
    if workspace_mib is not None and record["workspace_mib"] != workspace_mib:
        reasons.append("workspace_mib {} (built) vs {} (asked)".format(record["workspace_mib"], workspace_mib))
    if record["engine_sha256"] != file_sha256(engine_path):
        reasons.append("the engine file changed since it was built (damaged, or replaced)")
    return reasons


def int8_calibrator(trt, args, meta, batch, calib_cache, cuda):
    from .calibrator import CacheOnly, ImageBatcher, cache_identity, cache_matches, make_entropy_calibrator
    if args.calib_images:
        batcher = ImageBatcher(args.calib_images, meta, batch, args.calib_batches)
    else:
        batcher = CacheOnly(meta, batch)
    identity = cache_identity(meta.onnx_sha256, meta, batcher)
    if not args.calib_images and not cache_matches(calib_cache, identity):
        raise InputFileError("--int8 needs --calib-images DIR (representative frames), or a {} made for this "
                             "model.onnx".format(calib_cache))
    if os.path.isfile(calib_cache) and args.calib_images and not cache_matches(calib_cache, identity):
        print("recalibrating: {} was made for another model.onnx or other images".format(calib_cache))
    return make_entropy_calibrator(trt, batcher, calib_cache, cuda, identity)


def write_infer_config(folder, meta, precision, gpu_id, batch, onnx_file, workspace_mib, dla_core=None,
                       nms_fp32=False):
    """infer_config.txt for the engine just built or reused; ``nms_fp32``: this TensorRT needs EfficientNMS_TRT
    held in FP32, so nvinfer must hold it too should it ever build the engine itself. What a user tuned in the
    current file (thresholds, per-class groups, the scaling filter: deepstream.bundle_check) is kept."""
    from ..keyfile import KeyFile
    path = os.path.join(folder, "infer_config.txt")
    from .. import keyfile
    # the check ran: GLib reads it (without GLib, a GPU box away from the board: written from model.json alone)
    tuned = KeyFile(path).to_dict() if os.path.isfile(path) and keyfile.available() else None
    atomic_write_text(path, infer_config_text(
        meta, precision, gpu_id, batch, None, onnx_file,
        workspace_mib, dla_core, nms_fp32=nms_fp32, tuned=tuned))


def cli(argv=None):
    run_cli(get_args_parser, main, argv)


if __name__ == "__main__":
    cli()
