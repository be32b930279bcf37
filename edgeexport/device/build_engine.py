"""Build the TensorRT engine of a bundle, under the exact file name nvinfer looks for, on the device.

    python3 -m edgeexport.build_engine BUNDLE_OR_ONNX [--fp16|--fp32|--int8] [--batch N] [--workspace MB]
        [--timing-cache FILE] [--dla-core N] [--calib-images DIR]

Parses the ONNX (every parser error printed), builds (a Jetson Nano takes 10+ minutes: a heartbeat shows it is
alive), checks the engine's inputs and outputs against model.json, writes the engine atomically as
``<onnx>_b<batch>_gpu<id>_<precision>.engine`` beside the ONNX, and keeps infer_config.txt pointing at it.
Device-side: Python 3.6, numpy, tensorrt (+ pycuda or cuda-python for INT8 calibration); no torch, no onnx.
"""
import os
import sys
import threading
import time

from .trt import api as trt_api
from .bundle import check_onnx_sha256
from .cli import ArgumentParser, non_negative_int, positive_int, run_cli
from .configs import infer_config_text
from .errors import EngineBuildError, InputFileError, UnsupportedPrecisionError, UsageError
from .fileio import atomic_write_bytes, atomic_write_text, remove_stale_temporaries
from .meta import BundleMeta
from .naming import engine_file_name


def get_args_parser(add_help=True):
    p = ArgumentParser(description="Build a bundle's TensorRT engine under nvinfer's own file name.",
                       add_help=add_help)
    p.add_argument("target", help="the bundle folder (or its model.onnx; model.json must lie beside it)")
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--fp16", dest="precision", action="store_const", const="fp16", help="(default)")
    prec.add_argument("--fp32", dest="precision", action="store_const", const="fp32")
    prec.add_argument("--int8", dest="precision", action="store_const", const="int8",
                      help="needs --calib-images, or an existing calibration cache; not on a Jetson Nano")
    p.add_argument("--batch", type=positive_int, help="batch size (default: the bundle's; max batch for a dynamic "
                                                       "ONNX)")
    p.add_argument("--workspace", type=positive_int, default=1024, help="builder workspace in MiB (Nano: 256-1024)")
    p.add_argument("--timing-cache", help="read and update this TensorRT timing cache (faster rebuilds)")
    p.add_argument("--dla-core", type=non_negative_int, help="build for this DLA core (Xavier/Orin), GPU fallback on")
    p.add_argument("--gpu-id", type=non_negative_int, default=0)
    p.add_argument("--calib-images", help="INT8: a folder of representative images")
    p.add_argument("--calib-batches", type=positive_int, default=32,
                   help="INT8: at most this many calibration batches")
    p.add_argument("--force", action="store_true", help="rebuild even if the engine file exists")
    p.add_argument("--verbose", action="store_true", help="TensorRT's verbose log")
    return p


class Heartbeat(object):
    """Prints the elapsed time every ``every`` seconds while a long TensorRT call runs."""

    def __init__(self, what, every=30.0, out=sys.stdout):
        self.what, self.every, self.out = what, every, out
        self._stop = threading.Event()

    def __enter__(self):
        self.t0 = time.time()
        self._thread = threading.Thread(target=self._run)
        self._thread.daemon = True
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.every):
            print("  {} ... {:.0f} min {:02.0f} s".format(self.what, *divmod(time.time() - self.t0, 60)),
                  file=self.out)
            self.out.flush()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.elapsed = time.time() - self.t0


class EngineBuilder(object):
    """Parse -> configure -> build, against the ``tensorrt`` module given (the real one, or a test double)."""

    def __init__(self, trt, verbose=False):
        self.trt = trt
        self.logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
        self.builder = trt.Builder(self.logger)
        self.config = self.builder.create_builder_config()
        self.network = None

    def check_precision(self, precision):
        """Refuse a precision without a fast path on this GPU, before any slow work."""
        if precision in ("fp16", "int8") and not trt_api.has_fast(self.builder, precision):
            raise UnsupportedPrecisionError(
                "this GPU has no fast {} (TensorRT's platform_has_fast_{} is false){}; build with --fp32{}".format(
                    precision.upper(), precision, " - the Jetson Nano has no INT8" if precision == "int8" else "",
                    "" if precision == "int8" else " (or --int8 on a GPU that has it)"))

    def parse(self, onnx_path):
        with open(onnx_path, "rb") as f:
            data = f.read()
        self.network = self.builder.create_network(trt_api.network_flags(self.trt))
        self.parser = trt_api.parse_onnx(self.trt, self.network, self.logger, data)
        return self.network

    def configure(self, precision, workspace_bytes, input_name, input_shape, dynamic_batch, batch,
                  dla_core=None, calibrator=None, timing_cache=None):
        trt, cfg = self.trt, self.config
        self.check_precision(precision)
        trt_api.set_workspace(trt, cfg, workspace_bytes)
        if precision == "fp16":
            cfg.set_flag(trt.BuilderFlag.FP16)
        elif precision == "int8":
            cfg.set_flag(trt.BuilderFlag.INT8)
            cfg.set_flag(trt.BuilderFlag.FP16)  # layers INT8 cannot take fall back to FP16, not FP32
            cfg.int8_calibrator = calibrator
        if dynamic_batch:
            c, h, w = input_shape[1:]
            profile = self.builder.create_optimization_profile()
            profile.set_shape(input_name, (1, c, h, w), (batch, c, h, w), (batch, c, h, w))
            cfg.add_optimization_profile(profile)
            if precision == "int8" and hasattr(cfg, "set_calibration_profile"):
                cfg.set_calibration_profile(profile)
        if dla_core is not None:
            cores = getattr(self.builder, "num_DLA_cores", 0)
            if dla_core >= cores:
                raise UnsupportedPrecisionError("--dla-core {} asked for, but this device has {} DLA core(s)".format(
                    dla_core, cores))
            cfg.default_device_type = trt.DeviceType.DLA
            cfg.DLA_core = int(dla_core)
            cfg.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        if timing_cache is not None:
            cache = cfg.create_timing_cache(timing_cache)
            cfg.set_timing_cache(cache, False)

    def build(self):
        with Heartbeat("building the engine (a Jetson Nano takes 10+ minutes)") as hb:
            plan = trt_api.build_serialized(self.builder, self.network, self.config)
        if plan is None:
            raise EngineBuildError("TensorRT could not build the engine (its log above says why); try a larger "
                                   "--workspace or --fp32")
        self.build_seconds = hb.elapsed
        return plan

    def timing_cache_bytes(self):
        cache = self.config.get_timing_cache() if hasattr(self.config, "get_timing_cache") else None
        return None if cache is None else bytes(cache.serialize())


def check_engine_io(trt, plan, meta, batch):
    """The engine's tensors must be the bundle's contract: names, shapes (batch aside), float32 in and out."""
    logger = trt.Logger(trt.Logger.WARNING)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    if engine is None:
        raise EngineBuildError("the engine just built does not deserialise")
    io = trt_api.engine_io(trt, engine)
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
    """(bundle folder, onnx path, BundleMeta) from a bundle folder or its model.onnx."""
    if os.path.isdir(target):
        folder = target
        meta = BundleMeta.load(os.path.join(folder, "model.json"))
        onnx_path = os.path.join(folder, meta.onnx_file)
    elif os.path.isfile(target):
        folder, onnx_path = os.path.dirname(os.path.abspath(target)), target
        meta_path = os.path.join(folder, "model.json")
        if not os.path.isfile(meta_path):
            raise InputFileError("{} has no model.json beside it: pass the bundle folder written by export.py".format(
                target))
        meta = BundleMeta.load(meta_path)
    else:
        raise InputFileError("not found: {} (pass the bundle folder written by export.py)".format(target))
    check_onnx_sha256(onnx_path, meta)
    return folder, onnx_path, meta


def main(args, trt=None, cuda=None):
    folder, onnx_path, meta = resolve_target(args.target)
    precision = args.precision or meta.precision
    batch = int(args.batch or meta.batch_size)
    if not meta.dynamic_batch and batch != meta.batch_size:
        raise UsageError("the ONNX has a static batch of {}, got --batch {}: re-export with --batch-size {} or "
                             "--dynamic-batch".format(meta.batch_size, batch, batch))
    engine_name = engine_file_name(os.path.basename(onnx_path), batch, precision, args.gpu_id, args.dla_core)
    engine_path = os.path.join(os.path.dirname(os.path.abspath(onnx_path)), engine_name)
    if os.path.isfile(engine_path) and not args.force:
        print("engine already built: {} (pass --force to rebuild)".format(engine_path))
        return 0
    if trt is None:
        from .runners.tensorrt import import_tensorrt
        trt = import_tensorrt()
    print("TensorRT {}: building {} ({}, batch {}{})".format(getattr(trt, "__version__", "?"), engine_name,
                                                           precision, batch, ", dynamic" if meta.dynamic_batch else ""))
    builder = EngineBuilder(trt, args.verbose)
    builder.check_precision(precision)
    calibrator, calib_cache = None, os.path.join(folder, "calibration.cache")
    if precision == "int8":
        if not args.calib_images and not os.path.isfile(calib_cache):
            raise InputFileError("--int8 needs --calib-images DIR (representative frames), or an existing {}".format(
                calib_cache))
        if cuda is None:
            from .trt.cuda_memory import cuda_backend
            cuda = cuda_backend()
        from .trt.calibrator import ImageBatcher, make_entropy_calibrator
        batcher = ImageBatcher(args.calib_images, meta, batch, args.calib_batches) if args.calib_images else \
            _NoImages(meta, batch)
        calibrator = make_entropy_calibrator(trt, batcher, calib_cache, cuda)
    timing = None
    if args.timing_cache:  # an empty cache on the first run, so that one is created and written back
        timing = b""
        if os.path.isfile(args.timing_cache):
            with open(args.timing_cache, "rb") as f:
                timing = f.read()
    builder.parse(onnx_path)
    builder.configure(precision, args.workspace << 20, meta.input_name, meta.input_shape, meta.dynamic_batch, batch,
                      args.dla_core, calibrator, timing)
    plan = builder.build()
    check_engine_io(trt, plan, meta, batch)
    # An earlier build killed while writing (Ctrl-C is cleaned up, a power cut is not) may have left its
    # temporary, as large as the engine, on the board's small disk.
    for name in remove_stale_temporaries(os.path.dirname(engine_path), [engine_name]):
        print("removed {}, left by an interrupted earlier build".format(name))
    atomic_write_bytes(engine_path, plan)
    if args.timing_cache:
        data = builder.timing_cache_bytes()
        if data:
            atomic_write_bytes(args.timing_cache, data)
    atomic_write_text(os.path.join(folder, "infer_config.txt"), infer_config_text(
        meta, precision, args.gpu_id, batch, "calibration.cache" if precision == "int8" else None))
    print("engine: {} ({:.1f} MB, built in {:.0f} s); infer_config.txt points at it".format(
        engine_path, len(plan) / 1e6, builder.build_seconds))
    print("next: python3 -m edgeexport.parity {} --backend tensorrt && deepstream-app -c {}".format(
        folder, os.path.join(folder, "app_config.txt")))
    return 0


class _NoImages(object):
    """INT8 with only a calibration cache: TensorRT reads the cache and never asks for a batch."""

    def __init__(self, meta, batch):
        self.meta, self.batch_size = meta, batch

    def __iter__(self):
        return iter(())


def cli(argv=None):
    run_cli(get_args_parser, main, argv)


if __name__ == "__main__":
    cli()
