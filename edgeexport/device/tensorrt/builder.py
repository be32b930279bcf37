"""Parse -> configure -> build, against the ``tensorrt`` module given (the real one, or a test double).
Device-side (Python 3.6)."""
import sys
import threading
import time

from ..errors import EngineBuildError, UnsupportedPrecisionError
from ..meta import NMS_NODE_NAME
from . import api

MIB = 1 << 20
# A Jetson's GPU shares its memory with the OS (Jetson Nano: 4 GB LPDDR4 for both): the default workspace is a
# quarter of what is free now, within these bounds, so that the build leaves room for everything else.
WORKSPACE_MIN_MIB, WORKSPACE_MAX_MIB = 64, 1024


def default_workspace_mib(device_info):
    free_mib = int(device_info.get("free_bytes", 4 * WORKSPACE_MAX_MIB * MIB)) // MIB
    return max(WORKSPACE_MIN_MIB, min(WORKSPACE_MAX_MIB, free_mib // 4))


QDQ_EXPORT = "python export.py --model-path MODEL.pth --precision int8 --calib-data KIND:PATH"


def check_typing(trt, precision, explicit=False):
    """Refuse INT8 without a Q/DQ graph where TensorRT is strongly typed (11.x): precision comes from the graph, and
    implicit calibration is gone. ``explicit``: the bundle has the Q/DQ twin. Needs only the tensorrt module, so it
    runs before CUDA starts or any file is read."""
    if api.strongly_typed(trt) and precision == "int8" and not explicit:
        raise UnsupportedPrecisionError(
            "TensorRT {} builds strongly typed networks only: INT8 comes from a graph with Q/DQ nodes (the INT8 "
            "calibrator was removed in 11.x), and this bundle has none: re-export it on the training host with `{}` "
            "(writes model_int8.onnx), or build --fp16".format(trt.__version__, QDQ_EXPORT))


class Heartbeat(object):
    """Prints the elapsed time every ``every`` seconds while a long TensorRT call runs."""

    def __init__(self, what, every=30.0, out=None):
        self.what, self.every, self.out = what, every, out or sys.stdout
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
    """One engine build. Registers TensorRT's plugins before parsing (onnx-tensorrt 10.0 no longer does)."""

    def __init__(self, trt, verbose=False):
        self.trt = trt
        self.logger = api.get_logger(trt, verbose)
        api.init_plugins(trt, self.logger)
        self.builder = trt.Builder(self.logger)
        self.config = self.builder.create_builder_config()
        self.network = None
        self.nms_fp32 = False

    def check_precision(self, precision, explicit=False):
        """Refuse, before any slow work, a precision this TensorRT or this GPU cannot build."""
        trt = self.trt
        check_typing(trt, precision, explicit)
        if api.strongly_typed(trt):
            return
        if precision == "int8" and not api.has_fast(self.builder, "int8"):
            # sm_53 (Jetson Nano) has no INT8 path: platform_has_fast_int8 is False on 8.x (the double's "nano")
            fp16 = api.has_fast(self.builder, "fp16")
            raise UnsupportedPrecisionError(
                "this GPU has no fast INT8 (TensorRT's platform_has_fast_int8 is false; the Jetson Nano has none): "
                "{} is the fastest it runs; build --{}".format("FP16" if fp16 else "FP32", "fp16" if fp16 else "fp32"))
        if precision == "fp16" and not api.has_fast(self.builder, precision):
            raise UnsupportedPrecisionError(
                "this GPU has no fast FP16 (TensorRT's platform_has_fast_fp16 is false); build with --fp32 (or --int8 "
                "on a GPU that has it)")

    def parse(self, onnx_path):
        with open(onnx_path, "rb") as f:
            data = f.read()
        self.network = self.builder.create_network(api.network_flags(self.trt))
        self.parser = api.parse_onnx(self.trt, self.network, self.logger, data)
        return self.network

    def configure(self, precision, workspace_bytes, input_name, input_shape, dynamic_batch, batch, dla_core=None,
                  calibrator=None, timing_cache=None, nms_fp32=False, explicit=False):
        trt, cfg = self.trt, self.config
        self.check_precision(precision, explicit)
        api.set_workspace(trt, cfg, workspace_bytes)
        if not api.strongly_typed(trt):
            api.set_precision(trt, cfg, precision, calibrator)
        if nms_fp32:
            layers = api.plugin_layers(trt, self.network)
            if not layers:
                raise EngineBuildError("the efficient_nms graph has no EfficientNMS_TRT layer named {!r} to hold in "
                                       "FP32; re-export the bundle".format(NMS_NODE_NAME))
            api.constrain_to_fp32(trt, cfg, layers)
            self.nms_fp32 = True
        if dynamic_batch:
            c, h, w = input_shape[1:]
            profile = self.builder.create_optimization_profile()
            # nvinfer's profiles: 1..batch on the GPU, a fixed batch on DLA (nvdsinfer_model_builder.cpp
            # createDynamicParams, :866-877 @6.0.1); an engine built otherwise is one nvinfer would not build
            low = batch if dla_core is not None else 1
            profile.set_shape(input_name, (low, c, h, w), (batch, c, h, w), (batch, c, h, w))
            # the index of the profile, or -1 when TensorRT finds it invalid; set_calibration_profile: a bool
            # (tensorrt-stubs 10.13, IBuilderConfig)
            if cfg.add_optimization_profile(profile) < 0:
                raise EngineBuildError("TensorRT refused the optimization profile {!r}: batch {}..{} of {}: a "
                                       "bug; report it with the bundle's model.json".format(
                                           input_name, low, batch, [c, h, w]))
            if precision == "int8" and hasattr(cfg, "set_calibration_profile") and \
                    not cfg.set_calibration_profile(profile):
                raise EngineBuildError("TensorRT refused the INT8 calibration profile (batch {} of {}); build "
                                       "--fp16, or export with a static batch".format(batch, [c, h, w]))
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
            if not cfg.set_timing_cache(cache, False):  # returns bool (tensorrt-stubs 10.13)
                raise EngineBuildError("TensorRT refused the timing cache (another TensorRT or GPU wrote it?); "
                                       "delete it or pass another --timing-cache")

    def build(self, workspace_mib):
        self.logger.errors = []  # this build's errors only (the logger lives as long as the process)
        with Heartbeat("building the engine (a Jetson Nano takes 10+ minutes)") as hb:
            plan = api.build_serialized(self.builder, self.network, self.config)
        if plan is None:
            errors = self.logger.errors
            last = errors[-1] if errors else "no error text"
            if any("memory" in e.lower() or "allocat" in e.lower() for e in errors):
                raise EngineBuildError(
                    "TensorRT ran out of memory building the engine ({}): pass a smaller --workspace (this build "
                    "used {} MiB), close other programs (a Jetson's GPU shares its memory with the OS), or add "
                    "swap".format(last, workspace_mib))
            raise EngineBuildError("TensorRT could not build the engine: {} (its log above has the rest)".format(last))
        self.build_seconds = hb.elapsed
        return plan

    def timing_cache_bytes(self):
        cache = self.config.get_timing_cache() if hasattr(self.config, "get_timing_cache") else None
        return None if cache is None else bytes(cache.serialize())
