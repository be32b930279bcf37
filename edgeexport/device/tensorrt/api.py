"""A thin adapter over TensorRT's Python API for the generations a device meets, chosen by feature, not by name:

- 8.2 (JetPack 4.6, Jetson Nano): explicit-batch network flag, ``config.max_workspace_size``, the bindings API,
  ``context.set_binding_shape``, ``execute_async_v2`` (NVIDIA/TensorRT tag 8.2.1, python/src/infer/pyCore.cpp);
- 8.5 ... 10.x: ``set_memory_pool_limit``, named I/O tensors, ``set_input_shape``, ``set_tensor_address`` +
  ``execute_async_v3`` (tag v8.6.1 has both APIs; v10.0.0 removed the bindings API, ``build_engine`` and
  ``execute_async_v2``);
- 11.x: strongly typed only. ``BuilderFlag`` has no FP16/INT8/OBEY_PRECISION_CONSTRAINTS, there is no
  ``int8_calibrator``, no ``platform_has_fast_fp16/int8`` and no EXPLICIT_BATCH flag (tag v11.1,
  python/src/infer/pyCore.cpp lines 1599-1623 and 1771-1779; NVIDIA, "Migrating from TensorRT 10.x to 11.x",
  "Removed Python APIs and Replacements"): an FP16 engine comes from an FP16 ONNX.

Facts of behaviour, with their sources, are cited where the code depends on them. Every function takes the
``tensorrt`` module as ``trt`` so that tests can pass a double of any generation. Device-side (Python 3.6).
"""
import sys

import numpy as np

from ..errors import EngineBuildError, InferenceError, InputFileError
from ..meta import NMS_NODE_NAME

_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT8": np.int8, "BOOL": np.bool_,
           "INT64": np.int64, "UINT8": np.uint8}

# One logger and one plugin registration per process: TensorRT keeps a single logger pointer ("The logger passed
# into createInferRuntime differs from one already provided ... TensorRT maintains only a single logger pointer",
# NVIDIA/TensorRT issue #1475), and initLibNvInferPlugins registers the creators once.
_PROCESS = {"logger": None, "plugins": None}


def version(trt):
    """(major, minor, patch) of the running TensorRT, from ``trt.__version__`` ("8.2.1.8" -> (8, 2, 1))."""
    parts = []
    for p in str(getattr(trt, "__version__", "0")).split(".")[:3]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple((parts + [0, 0, 0])[:3])


def strongly_typed(trt):
    """True where weak typing is gone (TensorRT 11.x): precision comes from the ONNX, not from builder flags."""
    return not hasattr(getattr(trt, "BuilderFlag", None), "FP16")


def get_logger(trt, verbose=False):
    """The process's one TensorRT logger: prints TensorRT's messages to stderr at or above its severity and keeps
    the errors, so that a failed build can be explained (out of memory is not "try a larger workspace")."""
    logger = _PROCESS["logger"]
    if logger is None:
        class RecordingLogger(trt.ILogger):  # subclassable since 8.2 (tag 8.2.1 pyCore.cpp: PyLogger, "log")
            def __init__(self):
                trt.ILogger.__init__(self)
                self.min_severity = trt.ILogger.WARNING
                self.errors = []

            def log(self, severity, msg):
                if severity <= trt.ILogger.ERROR:
                    self.errors = (self.errors + [str(msg)])[-50:]
                if severity <= self.min_severity:
                    sys.stderr.write("[TensorRT] {}\n".format(msg))

        logger = _PROCESS["logger"] = RecordingLogger()
    if verbose:
        logger.min_severity = trt.ILogger.VERBOSE
    return logger


def init_plugins(trt, logger):
    """Register TensorRT's standard plugins (EfficientNMS_TRT) once per process, before parsing and before
    deserialising: onnx-tensorrt stopped doing it itself in 10.0 (8.2-GA ModelImporter.cpp:601-602 calls
    initLibNvInferPlugins; 10.0-GA does not, and a plugin node then fails with "Plugin not found"), and an engine
    holding a plugin does not deserialise without it (NVIDIA's samples call trt.init_libnvinfer_plugins before
    building and before loading: samples/python/efficientdet/build_engine.py:124 and infer.py:43 at tag 8.2.1)."""
    if _PROCESS["plugins"] is None:
        _PROCESS["plugins"] = bool(trt.init_libnvinfer_plugins(logger, ""))
        if not _PROCESS["plugins"]:
            sys.stderr.write("[edgeexport] warning: trt.init_libnvinfer_plugins returned False: EfficientNMS_TRT "
                             "may be missing (is libnvinfer_plugin installed?)\n")
    return _PROCESS["plugins"]


def network_flags(trt):
    """1 << EXPLICIT_BATCH where the flag exists (8.x; accepted and ignored by 10.x; gone in 11.x)."""
    flag = getattr(getattr(trt, "NetworkDefinitionCreationFlag", None), "EXPLICIT_BATCH", None)
    return 0 if flag is None else 1 << int(flag)


def set_workspace(trt, config, nbytes):
    if hasattr(config, "set_memory_pool_limit") and hasattr(trt, "MemoryPoolType"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(nbytes))  # 8.4+
    else:
        config.max_workspace_size = int(nbytes)  # 8.2


def has_fast(builder, precision):
    """Whether the GPU has a fast path for ``precision``; True where TensorRT no longer says (11.x)."""
    attr = {"fp16": "platform_has_fast_fp16", "int8": "platform_has_fast_int8"}.get(precision)
    return True if attr is None else bool(getattr(builder, attr, True))


def set_precision(trt, config, precision, calibrator=None):
    """Weak typing (8.x - 10.x): FP16 and INT8 are builder flags; INT8 keeps FP16 for layers INT8 cannot take (on a
    Q/DQ graph: the layers between no Q/DQ pair). The INT8 flag is what enables quantized layers at all ("the INT8
    flag must be set in the builder configuration", TensorRT 8.x Developer Guide, "Working with INT8"), with a
    calibrator (implicit) or without one (a Q/DQ graph carries its scales)."""
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if calibrator is not None:
            config.int8_calibrator = calibrator


def plugin_layers(trt, network, name=NMS_NODE_NAME):
    """The network's plugin layers whose name starts with ``name`` (the EfficientNMS_TRT node's layer)."""
    kinds = [getattr(trt.LayerType, k) for k in ("PLUGIN", "PLUGIN_V2", "PLUGIN_V3") if hasattr(trt.LayerType, k)]
    out = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type in kinds and str(layer.name).startswith(name):
            out.append(layer)
    return out


def constrain_to_fp32(trt, config, layers):
    """Run ``layers`` in FP32 inside an FP16 build: layer precision and FP32 float outputs, and the flag that makes
    the builder obey them (8.2: BuilderFlag.OBEY_PRECISION_CONSTRAINTS, tag 8.2.1 pyCore.cpp:714; ILayer.precision
    and set_output_type, pyGraph.cpp:310-316)."""
    for layer in layers:
        layer.precision = trt.float32
        for i in range(layer.num_outputs):
            if layer.get_output(i).dtype in (trt.float32, trt.float16):
                layer.set_output_type(i, trt.float32)
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)


def build_serialized(builder, network, config):
    """Serialized engine bytes, or None when TensorRT reports a failed build."""
    if hasattr(builder, "build_serialized_network"):
        plan = builder.build_serialized_network(network, config)
        return None if plan is None else bytes(plan)
    engine = builder.build_engine(network, config)
    return None if engine is None else bytes(engine.serialize())


def deserialize(trt, runtime, plan, where):
    """The engine in ``plan`` (bytes), or one InputFileError naming every reason TensorRT returns None for."""
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise InputFileError(
            "TensorRT {} cannot deserialise {}: it was built by another TensorRT version or for another GPU, its "
            "plugins (EfficientNMS_TRT) are not registered, or the file is damaged; rebuild it here with "
            "python3 -m edgeexport.build_engine".format(getattr(trt, "__version__", "?"), where))
    return engine


def uses_named_tensors(engine):
    return hasattr(engine, "num_io_tensors")


def dtype_name(dt):
    return str(getattr(dt, "name", dt)).split(".")[-1].upper()


def to_numpy_dtype(dt):
    return _DTYPES.get(dtype_name(dt), np.float32)


def engine_io(trt, engine):
    """[(name, is_input, shape tuple, dtype name)] in the engine's own order."""
    out = []
    if uses_named_tensors(engine):
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            out.append((name, is_input, tuple(engine.get_tensor_shape(name)), dtype_name(engine.get_tensor_dtype(name))))
    else:
        for i in range(engine.num_bindings):
            out.append((engine.get_binding_name(i), bool(engine.binding_is_input(i)),
                        tuple(engine.get_binding_shape(i)), dtype_name(engine.get_binding_dtype(i))))
    return out


def max_input_shape(trt, engine, name):
    """The largest shape an input accepts (profile 0's max for a dynamic dim)."""
    if uses_named_tensors(engine):
        shape = tuple(engine.get_tensor_shape(name))
        if -1 in shape:
            return tuple(engine.get_tensor_profile_shape(name, 0)[2])
        return shape
    idx = engine.get_binding_index(name)
    shape = tuple(engine.get_binding_shape(idx))
    if -1 in shape:
        return tuple(engine.get_profile_shape(0, idx)[2])
    return shape


def set_input_shape(engine, context, name, shape):
    """Both APIs return False for a shape the engine's profile does not take (tensorrt-stubs 10.13:
    ``set_input_shape(...) -> bool``; 8.2's ``set_binding_shape`` binds ``setBindingDimensions``, which returns
    bool): that is an inference error, not something to run past."""
    if uses_named_tensors(engine):
        ok = context.set_input_shape(name, tuple(shape))
    else:
        ok = context.set_binding_shape(engine.get_binding_index(name), tuple(shape))
    if not ok:
        raise InferenceError("TensorRT refused input {!r} of shape {} (outside the engine's optimisation profile); "
                             "feed the batch the engine was built for".format(name, list(shape)))


def output_shape(engine, context, name):
    if uses_named_tensors(engine):
        return tuple(context.get_tensor_shape(name))
    return tuple(context.get_binding_shape(engine.get_binding_index(name)))


def execute(engine, context, pointers, stream_handle):
    """Run one inference; ``pointers``: {tensor name: device pointer}. ``set_tensor_address`` and both execute
    calls return bool (tensorrt-stubs 10.13; tag 8.2.1 pyCore.cpp execute_async_v2 lambda)."""
    if hasattr(context, "execute_async_v3"):
        for name, ptr in pointers.items():
            if not context.set_tensor_address(name, int(ptr)):
                raise InferenceError("TensorRT refused the address of tensor {!r}".format(name))
        ok = context.execute_async_v3(stream_handle)
    else:
        bindings = [int(pointers[engine.get_binding_name(i)]) for i in range(engine.num_bindings)]
        ok = context.execute_async_v2(bindings, stream_handle)
    if not ok:
        raise InferenceError("TensorRT reported a failed inference (execute returned false; its log above says "
                             "why)")


def parse_onnx(trt, network, logger, onnx_bytes):
    """Parse into ``network``; on failure raise with EVERY parser error, not just the first."""
    parser = trt.OnnxParser(network, logger)
    if parser.parse(onnx_bytes):
        return parser
    errors = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)
        node = e.node() if hasattr(e, "node") else -1
        errors.append("[{}] node {}: {}".format(i, node, e.desc() if hasattr(e, "desc") else e))
    raise EngineBuildError("TensorRT's ONNX parser rejected the model ({} error(s)): {}".format(
        len(errors), "; ".join(errors) or "(no error text)"))
