"""A test double of the ``tensorrt`` Python module, per API generation, implementing what real TensorRT does.

Generations: "8.2" (8.2.1.8, JetPack 4.6), "8.6" (8.6.1), "10" (10.13), "11" (11.4). Each behaviour cites its
source (NVIDIA/TensorRT at the named tag unless said otherwise); the "10" generation's names are checked against
tensorrt-stubs 10.13 (tests/device/tensorrt/test_trt_double.py), so the double cannot invent API.

The "engine" is the ONNX plus what the build decided, serialised as JSON; inference runs the ONNX with ONNX
Runtime (the EfficientNMS_TRT node through edgeexport's NumPy reference of the plugin) reading and writing
"device memory" through a memory object (FakeCuda here, the fake pycuda in a fresh process, or a real CUDA
backend on a GPU machine), so the runner is exercised end to end. Calls are recorded in ``trt.calls``.
"""
import base64
import json
import os
import sys
import types

import numpy as np

GENERATIONS = {"8.2": "8.2.1.8", "8.6": "8.6.1.6", "10": "10.13.0.35", "11": "11.4.0.11"}
# GPUs the double can be: name, compute capability, registers per block (CUDA C++ Programming Guide, "Technical
# Specifications per Compute Capability": 32K on 5.3 and 6.2), fast FP16 / INT8 (the Nano has no INT8), DLA cores.
GPUS = {
    "nano": {"name": "NVIDIA Tegra X1", "compute_capability": "5.3", "regs_per_block": 32768, "fast_fp16": True,
             "fast_int8": False, "dla_cores": 0, "free_bytes": 2200 << 20, "total_bytes": 4096 << 20},
    "orin": {"name": "Orin", "compute_capability": "8.7", "regs_per_block": 65536, "fast_fp16": True,
             "fast_int8": True, "dla_cores": 2, "free_bytes": 20000 << 20, "total_bytes": 32768 << 20},
    "desktop": {"name": "NVIDIA GeForce RTX 3090", "compute_capability": "8.6", "regs_per_block": 65536,
                "fast_fp16": True, "fast_int8": True, "dla_cores": 0, "free_bytes": 20000 << 20,
                "total_bytes": 24576 << 20},
}


class _Enum(object):
    """A pybind11 enum value: named, ordered by value (py::arithmetic), hashable."""

    def __init__(self, name, value):
        self.name, self.value = name, value

    def __int__(self):
        return self.value

    __index__ = __int__

    def __eq__(self, other):
        return isinstance(other, _Enum) and (self.name, self.value) == (other.name, other.value)

    def __lt__(self, other):
        return self.value < int(other)

    def __le__(self, other):
        return self.value <= int(other)

    def __hash__(self):
        return hash((self.name, self.value))

    def __repr__(self):
        return self.name


def _enum_class(name, members):
    return type(name, (), {m: _Enum(m, i) for i, m in enumerate(members)})


class _Strict(object):
    """pybind11 classes without py::dynamic_attr reject attributes they do not bind: setting ``int8_calibrator``
    on TensorRT 11's IBuilderConfig is an AttributeError, as on the real module."""

    _settable = ()

    def __setattr__(self, key, value):
        if not key.startswith("_") and key not in self._settable:
            raise AttributeError("'tensorrt.{}' object has no attribute '{}'".format(type(self).__name__, key))
        object.__setattr__(self, key, value)


class FakeCuda(object):
    """Device memory as numpy byte arrays keyed by fake pointers (the runner's CUDA backend interface), and the
    pinned host memory the copies go through. Like pycuda's, the copies take page-locked memory only ("src must be
    page-locked memory", memcpy_htod_async, pycuda v2022.1 doc/driver.rst:1565-1572): pageable memory is a
    TypeError here. Pinned allocations are kept until freed, so a test sees what leaks; ``closed`` says whether
    ``close()`` ran."""

    def __init__(self, gpu="desktop"):
        self.memory, self._next, self.stream_handle = {}, 4096, 7
        self.gpu = dict(GPUS[gpu])
        self.pinned = {}  # id -> the allocation (an ndarray, or the fake pycuda's PagelockedHostAllocation)
        self.closed = False

    def device_alloc(self, nbytes):
        ptr = self._next
        self._next += int(nbytes) + 256
        self.memory[ptr] = np.zeros(int(nbytes), np.uint8)
        return ptr, ptr

    def register_pinned(self, allocation):
        self.pinned[id(allocation)] = allocation
        return allocation

    def release_pinned(self, allocation):
        if self.pinned.pop(id(allocation), None) is None:
            raise ValueError("pinned memory freed twice, or never allocated here")

    def pinned_empty(self, n, dtype):
        return self.register_pinned(np.empty(int(n), dtype))

    def pinned_free(self, array):
        self.release_pinned(array)

    def _pinned_only(self, array, what):
        owner = array
        while isinstance(owner, np.ndarray) and owner.base is not None:
            owner = owner.base
        if self.pinned.get(id(owner)) is not owner:
            raise TypeError("{}: pageable host memory; the copies take page-locked memory only".format(what))

    def htod(self, ptr, host):
        self._pinned_only(host, "htod source")
        raw = np.ascontiguousarray(host).view(np.uint8).ravel()
        self.memory[ptr][:raw.size] = raw

    def dtoh(self, host, ptr):
        self._pinned_only(host, "dtoh destination")
        raw = host.view(np.uint8).reshape(-1)
        raw[:] = self.memory[ptr][:raw.size]

    def synchronize(self):
        pass

    def free(self, owner):
        self.memory.pop(owner, None)

    def close(self):
        self.closed = True

    def device_info(self):
        keys = ("name", "compute_capability", "regs_per_block", "free_bytes", "total_bytes")
        return {k: self.gpu[k] for k in keys}

    # how the double's engine reaches "device memory"
    def read(self, ptr, nbytes):
        return self.memory[ptr][:nbytes].copy()

    def write(self, ptr, array):
        raw = np.ascontiguousarray(array).view(np.uint8).ravel()
        self.memory[ptr][:raw.size] = raw


class BackendMemory(object):
    """The double's engine over a real CUDA backend (edgeexport.device.tensorrt.cuda_memory): synchronous copies
    through a pinned staging buffer, as the backends' copies take page-locked memory only."""

    def __init__(self, backend):
        self.backend = backend

    def _staged(self, nbytes, copy):
        host = self.backend.pinned_empty(int(nbytes), np.uint8)
        try:
            copy(host)
            self.backend.synchronize()
            return np.array(host)
        finally:
            self.backend.pinned_free(host)

    def read(self, ptr, nbytes):
        return self._staged(nbytes, lambda host: self.backend.dtoh(host, ptr))

    def write(self, ptr, array):
        raw = np.ascontiguousarray(array).view(np.uint8).ravel()

        def copy(host):
            host[:] = raw
            self.backend.htod(ptr, host)
        self._staged(raw.size, copy)


def make_tensorrt(generation="10", gpu="desktop", parser_errors=None, rename_output=None, cuda=None,
                  build_fails_with=None, int8_box_shift=0.0):
    """A fresh double module. ``gpu``: a GPUS key (what the builder reports and the engine is bound to);
    ``parser_errors``: descriptions the parser reports instead of parsing; ``rename_output``: (old, new) to build a
    wrong engine; ``cuda``: the memory inference reads (FakeCuda, BackendMemory, ...); ``build_fails_with``: an
    error message the builder logs before returning None (e.g. an out-of-memory one). ``int8_box_shift``: a TEST
    KNOB, not TensorRT's behaviour: INT8 engines move every box by this much (normalised), standing in for the
    accuracy a poor calibration costs (how much real INT8 costs depends on the calibration; a double cannot know)."""
    if generation not in GENERATIONS:
        raise ValueError("generation must be one of {}".format(sorted(GENERATIONS)))
    version = GENERATIONS[generation]
    v = tuple(int(p) for p in version.split(".")[:2])
    named_tensors = v >= (8, 5)  # 8.5 added named I/O tensors (v8.6.1 has both), 10.0 removed bindings
    bindings_api = v < (10, 0)
    strongly_typed_only = v >= (11, 0)
    gpu_spec = dict(GPUS[gpu])
    memory = cuda if cuda is not None else FakeCuda(gpu)
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = []
    trt.generation = generation
    rec = trt.calls.append
    trt._registry = {}
    trt._logger = []

    # --- enums (python/src/infer/pyCore.cpp, pyGraph.cpp, pyFoundationalTypes.cpp of each tag) -------------
    if strongly_typed_only:
        # v11.1 pyCore.cpp:1599-1623: no FP16, INT8, OBEY_PRECISION_CONSTRAINTS; 1771-1779: no EXPLICIT_BATCH
        trt.BuilderFlag = _enum_class("BuilderFlag", ["DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE",
                                                      "TF32"])
        trt.NetworkDefinitionCreationFlag = _enum_class("NetworkDefinitionCreationFlag", ["STRONGLY_TYPED"])
    else:
        trt.BuilderFlag = _enum_class("BuilderFlag", ["FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT",
                                                      "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS"])
        trt.NetworkDefinitionCreationFlag = _enum_class("NetworkDefinitionCreationFlag", ["EXPLICIT_BATCH"])
    trt.DeviceType = _enum_class("DeviceType", ["GPU", "DLA"])
    trt.DataType = _enum_class("DataType", ["FLOAT", "HALF", "INT8", "INT32", "BOOL"])
    trt.float32, trt.float16, trt.int8, trt.int32 = (trt.DataType.FLOAT, trt.DataType.HALF, trt.DataType.INT8,
                                                     trt.DataType.INT32)
    trt.LayerType = _enum_class("LayerType", ["CONVOLUTION", "ACTIVATION", "POOLING", "ELEMENTWISE", "SOFTMAX",
                                              "SHUFFLE", "CONCATENATION", "SLICE", "UNARY", "GATHER", "REDUCE",
                                              "CONSTANT", "PLUGIN_V2", "QUANTIZE", "DEQUANTIZE"])
    if named_tensors:
        trt.TensorIOMode = _enum_class("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    if v >= (8, 4):  # memory pools: 8.4.1 pyCore.cpp has set_memory_pool_limit
        trt.MemoryPoolType = _enum_class("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM"])

    # --- loggers (8.2.1 pyCore.cpp:396-479: ILogger subclassable, Severity exported into its scope) ----------
    severities = ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"]

    class ILogger(object):
        def __init__(self):
            pass

        def log(self, severity, msg):
            raise NotImplementedError

    for i, s in enumerate(severities):
        setattr(ILogger, s, _Enum(s, i))
    ILogger.Severity = _enum_class("Severity", severities)
    trt.ILogger = ILogger

    class Logger(ILogger):
        def __init__(self, min_severity=ILogger.WARNING):
            self.min_severity = min_severity

        def log(self, severity, msg):
            if severity <= self.min_severity:
                sys.stderr.write("[TRT] {}\n".format(msg))
    trt.Logger = Logger

    def _adopt_logger(logger, who):
        """TensorRT keeps one logger pointer per process; another one is warned about and ignored ("The logger
        passed into createInferRuntime differs from one already provided ...", NVIDIA/TensorRT #1475)."""
        if not trt._logger:
            trt._logger.append(logger)
        elif trt._logger[0] is not logger:
            rec(("logger_differs", who))
            trt._logger[0].log(ILogger.WARNING, "The logger passed into {} differs from one already provided for "
                                                "an existing builder, runtime, or refitter.".format(who))

    def _log(severity, msg):
        if trt._logger:
            trt._logger[0].log(severity, msg)

    # --- the plugin registry --------------------------------------------------------------------------------
    def init_libnvinfer_plugins(logger, namespace):
        """Registers the standard plugins' creators (EfficientNMS_TRT among them); returns True."""
        rec(("init_libnvinfer_plugins", namespace))
        trt._registry["EfficientNMS_TRT"] = True
        return True
    trt.init_libnvinfer_plugins = init_libnvinfer_plugins

    # --- network, layers, profiles, config ------------------------------------------------------------------
    class ITensor(object):
        def __init__(self, name, dtype):
            self.name, self.dtype = name, dtype

    class ILayer(_Strict):
        _settable = ("name",) if strongly_typed_only else ("name", "precision")

        def __init__(self, name, layer_type, outputs):
            object.__setattr__(self, "name", name)
            object.__setattr__(self, "type", layer_type)
            object.__setattr__(self, "_outputs", outputs)
            object.__setattr__(self, "_output_types", {})
            if not strongly_typed_only:
                object.__setattr__(self, "precision", trt.float32)
                object.__setattr__(self, "_precision_set", False)

        @property
        def num_outputs(self):
            return len(self._outputs)

        def get_output(self, i):
            return self._outputs[i]

        def __setattr__(self, key, value):
            _Strict.__setattr__(self, key, value)
            if key == "precision":
                object.__setattr__(self, "_precision_set", True)
                rec(("layer.precision", self.name, value.name))

    if not strongly_typed_only:  # ILayer.set_output_type: 8.2.1 pyGraph.cpp:316 (removed with weak typing in 11)
        def set_output_type(self, index, dtype):
            self._output_types[index] = dtype
            rec(("layer.set_output_type", self.name, index, dtype.name))
        ILayer.set_output_type = set_output_type

    class INetworkDefinition(object):
        def __init__(self, flags):
            self._flags, self._inputs, self._outputs, self._onnx, self._layers = flags, [], [], None, []
            self._qdq = False  # Q/DQ layers: the builder then works in explicit quantization

        @property
        def num_layers(self):
            return len(self._layers)

        def get_layer(self, i):
            return self._layers[i]

    class IOptimizationProfile(object):
        def __init__(self):
            self._shapes = {}

        def set_shape(self, name, min, opt, max):
            self._shapes[name] = (tuple(min), tuple(opt), tuple(max))
            rec(("profile.set_shape", name, tuple(min), tuple(opt), tuple(max)))

        def get_shape(self, name):
            return self._shapes[name]

        def __bool__(self):
            # valid: shapes set, min <= opt <= max in every dimension ("which must satisfy bool(profile) ==
            # True", IBuilderConfig.add_optimization_profile, tensorrt-stubs 10.13)
            return bool(self._shapes) and all(a <= b <= c for lo, opt, hi in self._shapes.values()
                                               for a, b, c in zip(lo, opt, hi))

        __nonzero__ = __bool__

    class ITimingCache(object):
        def __init__(self, data):
            self._data = bytes(data) or b"timing-cache-v1"

        def serialize(self):
            return self._data + b"+"

    class IBuilderConfig(_Strict):
        _settable = ("default_device_type", "DLA_core") + (() if strongly_typed_only else ("int8_calibrator",)) + \
            (("max_workspace_size",) if v < (10, 0) else ())  # max_workspace_size: gone in 10.0 (v10.0.0 pyCore)

        def __init__(self):
            object.__setattr__(self, "_flags", set())
            object.__setattr__(self, "_profiles", [])
            object.__setattr__(self, "_pools", {})
            object.__setattr__(self, "_timing_cache", None)
            object.__setattr__(self, "default_device_type", trt.DeviceType.GPU)
            object.__setattr__(self, "DLA_core", -1)
            if not strongly_typed_only:
                object.__setattr__(self, "int8_calibrator", None)
            if v < (10, 0):
                object.__setattr__(self, "max_workspace_size", 0)

        def set_flag(self, flag):
            self._flags.add(flag)
            rec(("set_flag", flag.name))

        def get_flag(self, flag):
            return flag in self._flags

        def add_optimization_profile(self, profile):
            # "The index of the optimization profile (starting from 0) if the input is valid, or -1 if the input
            # is not valid" (tensorrt-stubs 10.13; include/NvInfer.h:8191 at tag 8.2.1)
            if not profile:
                return -1
            self._profiles.append(profile)
            return len(self._profiles) - 1

        def create_timing_cache(self, data):
            return ITimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            object.__setattr__(self, "_timing_cache", cache)
            return True

        def get_timing_cache(self):
            return self._timing_cache

    if not strongly_typed_only:  # calibration profiles went with implicit INT8 in 11.x
        def set_calibration_profile(self, profile):
            # "True if the calibration profile was set correctly" (tensorrt-stubs 10.13)
            if not profile:
                return False
            object.__setattr__(self, "_calibration_profile", profile)
            return True
        IBuilderConfig.set_calibration_profile = set_calibration_profile
    if v >= (8, 4):
        def set_memory_pool_limit(self, pool, size):
            self._pools[pool] = size
        IBuilderConfig.set_memory_pool_limit = set_memory_pool_limit

    # --- the ONNX parser ------------------------------------------------------------------------------------
    class ParserError(object):
        def __init__(self, i, desc):
            self.i, self._desc = i, desc

        def desc(self):
            return self._desc

        def node(self):
            return self.i

        def code(self):
            return 1

    class OnnxParser(object):
        def __init__(self, network, logger):
            self._network, self._errors = network, []

        def parse(self, model):
            if parser_errors:
                self._errors = [ParserError(i, d) for i, d in enumerate(parser_errors)]
                return False
            import onnx
            proto = onnx.load_from_string(bytes(model))
            plugin_nodes = [n for n in proto.graph.node if n.op_type == "EfficientNMS_TRT"]
            if not bindings_api and plugin_nodes and "EfficientNMS_TRT" not in trt._registry:
                # 10.0+: the parser no longer registers the standard plugins (onnx-tensorrt 10.0-GA has no
                # initLibNvInferPlugins call; onnxOpImporters.cpp:6369 asserts the creator exists)
                self._errors = [ParserError(i, "Plugin not found, are the plugin name, version, and namespace "
                                              "correct?") for i, _ in enumerate(plugin_nodes)]
                return False
            if bindings_api:  # 8.x: ModelImporter.cpp:601-602 (8.2-GA) registers them while parsing
                trt._registry["EfficientNMS_TRT"] = True
            elem = {1: trt.float32, 10: trt.float16, 6: trt.int32, 7: trt.int32}

            def dims(vi):
                return [d.dim_value if d.dim_value else -1 for d in vi.type.tensor_type.shape.dim]
            self._network._inputs = [(i.name, dims(i), elem[i.type.tensor_type.elem_type].name)
                                   for i in proto.graph.input]
            self._network._outputs = [(o.name, dims(o), elem[o.type.tensor_type.elem_type].name)
                                    for o in proto.graph.output]
            self._network._onnx = bytes(model)
            problems = _qdq_problems(proto)
            if problems:
                self._errors = [ParserError(i, d) for i, d in problems]
                return False
            self._network._qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
            seen = {}
            for n in proto.graph.node:  # one layer per node, named after it (ImporterContext::registerLayer)
                if n.op_type == "Constant":
                    continue  # "No layer will be added for Constant nodes in ONNX" (ImporterContext.hpp)
                base = n.name or n.op_type
                name = base if base not in seen else "{}_{}".format(base, seen[base])
                seen[base] = seen.get(base, 0) + 1
                if n.op_type == "EfficientNMS_TRT":  # FallbackPluginImporter -> addPluginV2
                    outs = [ITensor(o, trt.int32 if i in (0, 3) else trt.float32) for i, o in enumerate(n.output)]
                    layer_type = trt.LayerType.PLUGIN_V2
                elif n.op_type in ("QuantizeLinear", "DequantizeLinear"):  # addQuantize / addDequantize
                    outs = [ITensor(o, trt.int8 if n.op_type == "QuantizeLinear" else trt.float32) for o in n.output]
                    layer_type = trt.LayerType.QUANTIZE if n.op_type == "QuantizeLinear" else \
                        trt.LayerType.DEQUANTIZE
                else:
                    outs = [ITensor(o, trt.float32) for o in n.output]
                    layer_type = trt.LayerType.CONVOLUTION if n.op_type == "Conv" else trt.LayerType.ELEMENTWISE
                self._network._layers.append(ILayer(name, layer_type, outs))
            return True

        @property
        def num_errors(self):
            return len(self._errors)

        def get_error(self, i):
            return self._errors[i]
    trt.OnnxParser = OnnxParser

    def _qdq_problems(proto):
        """[(node index, description)] for each QuantizeLinear/DequantizeLinear the ONNX parser of this version
        rejects. 8.x: onnx-tensorrt 8.2-GA builtin_op_importers.cpp QuantDequantLinearHelper: exactly 3 inputs
        (:1133), constant scales all positive (:1149-1150), an all-zero zero point (:1169) of the scale's size
        (:1182), per-channel scales only along an axis of that size (:1191-1203). 10.x/11.x: 10.1-GA
        onnxOpImporters.cpp QuantDequantLinearHelper: at least 2 inputs (:1369-1371), no UINT8 data (:1349), an
        all-zero zero point ("TensorRT only supports symmetric quantization", :1490-1492)."""
        from onnx import numpy_helper
        consts = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
        shapes = {t.name: t.dims for t in proto.graph.initializer}
        for n in proto.graph.node:  # a Q of a constant keeps its shape (what the DQ after it sees)
            if n.op_type == "QuantizeLinear" and n.input[0] in shapes:
                shapes[n.output[0]] = shapes[n.input[0]]
        out = []
        for i, n in enumerate(proto.graph.node):
            if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
                continue
            if bindings_api and len(n.input) != 3:
                out.append((i, "Assertion failed: (inputs.size() == 3) && \"This version of TensorRT requires 3 "
                               "inputs for the DequantizeLinear operator.\""))
                continue
            if not bindings_api and len(n.input) < 2:
                out.append((i, "This version of TensorRT requires at least 2 inputs for the "
                               "QuantizeLinear/DequantizeLinear operator."))
                continue
            scale = consts.get(n.input[1])
            zero = consts.get(n.input[2]) if len(n.input) > 2 else None
            if scale is not None and not (scale > 0).all():
                out.append((i, "Assertion failed: scaleAllPositive && \"Scale coefficients must all be positive\""))
            if zero is not None and zero.dtype == np.uint8 and not bindings_api:
                out.append((i, "Invalid input type UINT8 for QuantizeLinear/DequantizeLinear"))
            elif zero is not None and zero.any():
                out.append((i, "TensorRT only supports symmetric quantization - zeroPt must be all zeros"))
            if scale is not None and zero is not None and zero.size != scale.size and bindings_api:
                out.append((i, "Assertion failed: zeroPointSize == scaleSize && \"The scale and zero-point must "
                               "have the same size\""))
            if scale is not None and scale.size > 1:
                dims = shapes.get(n.input[0])
                axis = [a.i for a in n.attribute if a.name == "axis"]
                axis = axis[0] if axis else 1
                if dims is None or dims[axis] != scale.size:
                    out.append((i, "Assertion failed: K == scaleSize && \"The number of scales is not equal to the "
                                   "number of output channels.\""))
        return out

    # --- the calibrator ---------------------------------------------------------------------------------------
    if not strongly_typed_only:  # IInt8EntropyCalibrator2 is gone in 11.x (v11.1 has no pyInt8 bindings)
        class IInt8EntropyCalibrator2(object):
            def __init__(self):
                pass
        trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2

    def _callback(calibrator, method, *args):
        """A Python exception inside a calibrator callback: 8.2 calls it from a noexcept function with no
        try/catch, so std::terminate ends the process with no message (pyInt8.cpp:39-53, tag 8.2.1); 8.4+
        prints it and returns "no batch" (pyInt8.cpp:52-77, tags 8.4.1 ... v10.13.0)."""
        try:
            return getattr(calibrator, method)(*args)
        except BaseException as e:
            if v < (8, 4):
                rec(("std::terminate", method))
                sys.stderr.flush()
                os.abort()
            sys.stderr.write("[ERROR] Exception caught in {}(): {}\n".format(method, e))
            return None

    # --- builder ----------------------------------------------------------------------------------------------
    class Builder(object):
        def __init__(self, logger):
            _adopt_logger(logger, "createInferBuilder")
            self._logger = logger
            if not strongly_typed_only:  # platformHasFastFp16/Int8: removed in 11.x (migration guide)
                self.platform_has_fast_fp16 = gpu_spec["fast_fp16"]
                self.platform_has_fast_int8 = gpu_spec["fast_int8"]
            self.num_DLA_cores = gpu_spec["dla_cores"]

        def create_network(self, flags=0):
            rec(("create_network", flags))
            return INetworkDefinition(flags)

        def create_builder_config(self):
            return IBuilderConfig()

        def create_optimization_profile(self):
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            rec(("build_serialized_network",))
            if build_fails_with:
                _log(ILogger.ERROR, build_fails_with)
                return None
            flags = sorted(f.name for f in config._flags)
            if network._qdq and not strongly_typed_only and "INT8" not in flags:
                # weak typing: "To enable the use of any quantized operations, the INT8 flag must be set in the
                # builder configuration" (TensorRT 8.x Developer Guide, "Working with INT8"); on 10.x the flag is
                # still what enables INT8 layers on weak typing ("INT8 : Enable Int8 layer selection. Deprecated in
                # TensorRT 10.12. Superseded by strong typing", tensorrt-stubs 10.13 BuilderFlag). The words of
                # this error are the double's, not TensorRT's.
                _log(ILogger.ERROR, "Q/DQ layers in the network, but the INT8 builder flag is not set")
                return None
            calibrated = None
            cal = getattr(config, "int8_calibrator", None)
            if cal is not None and "INT8" in flags and network._qdq:
                # explicit quantization ignores a calibrator, with this warning (TensorRT 8.2.1.8:
                # NVIDIA/TensorRT#1837)
                _log(ILogger.WARNING, "Calibrator won't be used in explicit precision mode. Use quantization aware "
                                      "training to generate network with Quantize/Dequantize nodes.")
                cal = None
            if cal is not None and "INT8" in flags:  # calibration: the cache, or batches until None
                cache = _callback(cal, "read_calibration_cache")
                batches = 0
                if cache is None:
                    while _callback(cal, "get_batch", [network._inputs[0][0]]) is not None:
                        batches += 1
                    _callback(cal, "write_calibration_cache",
                              "TRT-{}-EntropyCalibration2\ninput: 3c010a14\n".format(
                                  version.replace(".", "")[:4]).encode())
                calibrated = batches
                rec(("calibrated", batches, cache is not None))
            nms = [layer for layer in network._layers if layer.type == trt.LayerType.PLUGIN_V2]
            nms_fp32 = bool(nms) and all(
                getattr(layer, "_precision_set", False) and layer.precision == trt.float32 for layer in nms) \
                and "OBEY_PRECISION_CONSTRAINTS" in flags
            outputs = [list(o) for o in network._outputs]
            if rename_output:
                outputs = [[rename_output[1] if o[0] == rename_output[0] else o[0]] + o[1:] for o in outputs]
            workspace = config._pools.get(getattr(getattr(trt, "MemoryPoolType", None), "WORKSPACE", None)) \
                if hasattr(trt, "MemoryPoolType") else config.max_workspace_size
            plan = {"magic": "trt-double", "tensorrt_version": version, "gpu": gpu_spec["name"],
                    "inputs": network._inputs, "outputs": outputs, "flags": flags,
                    "profiles": [{k: v for k, v in p._shapes.items()} for p in config._profiles],
                    "onnx": base64.b64encode(network._onnx).decode(), "workspace": workspace,
                    "dla_core": config.DLA_core if config.default_device_type == trt.DeviceType.DLA else None,
                    "has_plugin": bool(nms), "nms_half": bool(nms) and "FP16" in flags and not nms_fp32,
                    "calibrated_batches": calibrated, "explicit_int8": network._qdq}
            return json.dumps(plan).encode()

    if v < (10, 0):  # build_engine: removed in 10.0 (v10.0.0 pyCore.cpp has no "build_engine")
        def build_engine(self, network, config):
            return Runtime(self._logger).deserialize_cuda_engine(self.build_serialized_network(network, config))
        Builder.build_engine = build_engine
    trt.Builder = Builder

    # --- engine, context, runtime -----------------------------------------------------------------------------
    class ICudaEngine(object):
        def __init__(self, plan):
            self._plan = plan
            self._io = [(n, True, s, d) for n, s, d in plan["inputs"]] + [(n, False, s, d) for n, s, d in plan["outputs"]]

        def create_execution_context(self):
            return IExecutionContext(self)

        def serialize(self):
            return json.dumps(self._plan).encode()

        def _profile(self, name):
            return self._plan["profiles"][0][name] if self._plan["profiles"] else None

        def _accepts(self, name, shape):
            static = dict((n, s) for n, _, s, _ in self._io)[name]
            if len(shape) != len(static):
                return False
            prof = self._profile(name)
            for i, (d, s) in enumerate(zip(shape, static)):
                if s != -1 and d != s:
                    return False
                if s == -1 and prof is not None and not prof[0][i] <= d <= prof[2][i]:
                    return False
            return True

    if named_tensors:
        ICudaEngine.num_io_tensors = property(lambda self: len(self._io))
        ICudaEngine.get_tensor_name = lambda self, i: self._io[i][0]
        ICudaEngine.get_tensor_mode = lambda self, name: trt.TensorIOMode.INPUT if dict(
            (n, i) for n, i, _, _ in self._io)[name] else trt.TensorIOMode.OUTPUT
        ICudaEngine.get_tensor_shape = lambda self, name: tuple(dict((n, s) for n, _, s, _ in self._io)[name])
        ICudaEngine.get_tensor_dtype = lambda self, name: getattr(trt.DataType, dict(
            (n, d) for n, _, _, d in self._io)[name])
        ICudaEngine.get_tensor_profile_shape = lambda self, name, profile: self._profile(name)
    if bindings_api:
        ICudaEngine.num_bindings = property(lambda self: len(self._io))
        ICudaEngine.get_binding_name = lambda self, i: self._io[i][0]
        ICudaEngine.get_binding_index = lambda self, name: [n for n, _, _, _ in self._io].index(name)
        ICudaEngine.binding_is_input = lambda self, i: self._io[i][1]
        ICudaEngine.get_binding_shape = lambda self, i: tuple(self._io[i][2])
        ICudaEngine.get_binding_dtype = lambda self, i: getattr(trt.DataType, self._io[i][3])
        ICudaEngine.get_profile_shape = lambda self, profile, i: self._profile(self._io[i][0])

    class IExecutionContext(object):
        def __init__(self, engine):
            self._engine, self._shapes, self._addresses = engine, {}, {}
            self._session = self._nms = None

        def _load(self):
            import onnx
            import onnxruntime as ort
            from onnx import helper
            proto = onnx.load_from_string(base64.b64decode(self._engine._plan["onnx"]))
            node = [n for n in proto.graph.node if n.op_type == "EfficientNMS_TRT"]
            if node:  # ONNX Runtime runs the graph up to the plugin; the plugin is edgeexport's NumPy reference
                self._nms = {a.name: helper.get_attribute_value(a) for a in node[0].attribute}
                self._nms_inputs = list(node[0].input)  # (boxes, scores), whatever the graph calls them
                proto.graph.node.remove(node[0])
                del proto.graph.output[:]
                proto.graph.output.extend([helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
                                           for n in self._nms_inputs])
                for o in [o for o in proto.opset_import if o.domain == "TRT"]:
                    proto.opset_import.remove(o)
            self._session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])

        def _run(self, pointers):
            if any(n not in pointers for n, _, _, _ in self._engine._io):
                return False  # enqueue without every I/O address fails (returns false)
            if self._session is None:
                self._load()
            feeds = {}
            for name, is_in, _, dtype in self._engine._io:
                if is_in:
                    if name not in self._shapes:
                        return False  # a dynamic input without its shape set
                    shape = self._shapes[name]
                    n = int(np.prod(shape))
                    feeds[name] = memory.read(pointers[name], n * 4).view(np.float32).reshape(shape)
            outs = dict(zip([o.name for o in self._session.get_outputs()], self._session.run(None, feeds)))
            if self._nms is not None:
                outs = self._plugin(outs)
            if int8_box_shift and "INT8" in self._engine._plan["flags"] and "boxes" in outs and \
                    not self._engine._plan.get("explicit_int8"):
                outs["boxes"] = outs["boxes"] + np.float32(int8_box_shift)
            for name, _, _, _ in [io for io in self._engine._io if not io[1]]:
                arr = np.ascontiguousarray(outs[name])
                memory.write(pointers[name], arr)
                self._shapes[name] = arr.shape
            return True

        def _plugin(self, outs):
            """EfficientNMS_TRT: its candidate cap is 5000 where a block has 64K registers, else 2000
            (efficientNMSInference.cu:681-690 at tag 8.2.1; efficientNMSPlugin.cpp:82-91 at v8.6.1 ... v11.1).
            Built in FP16 on 8.2 without the FP32 constraint, every score comes out minus 1 (scoreBits 10 at
            tag 8.2.1 efficientNMSParameters.h; field reports NVIDIA/TensorRT #1758, #2903)."""
            from edgeexport.device.postprocess import EFFICIENT_NMS_OUTPUTS, efficient_nms_outputs
            a = self._nms
            cap = 5000 if gpu_spec["regs_per_block"] >= 65536 else 2000
            boxes, scores = (outs[n] for n in self._nms_inputs)
            per = [efficient_nms_outputs(b, s, a["score_threshold"], a["iou_threshold"], a["max_output_boxes"], cap)
                   for b, s in zip(boxes, scores)]
            out = {n: np.stack([p[n] for p in per]) for n in EFFICIENT_NMS_OUTPUTS}
            out["num_detections"] = out["num_detections"].astype(np.int32)
            out["detection_classes"] = out["detection_classes"].astype(np.int32)
            if self._engine._plan["nms_half"] and version.startswith("8.2"):
                n = out["num_detections"][:, 0]
                scores = out["detection_scores"].astype(np.float16).astype(np.float32)
                for b in range(len(n)):
                    scores[b, :n[b]] -= 1.0
                out["detection_scores"] = scores
            return out

    if named_tensors:
        def set_input_shape(self, name, shape):
            rec(("set_input_shape", name, tuple(shape)))
            if not self._engine._accepts(name, tuple(shape)):
                return False  # bool, tensorrt-stubs 10.13: IExecutionContext.set_input_shape -> bool
            self._shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            return self._shapes.get(name, dict((n, s) for n, _, s, _ in self._engine._io)[name])

        def set_tensor_address(self, name, ptr):
            if name not in [n for n, _, _, _ in self._engine._io]:
                return False
            self._addresses[name] = ptr
            return True

        def execute_async_v3(self, stream_handle):
            rec(("execute_async_v3", stream_handle))
            return self._run(self._addresses)
        IExecutionContext.set_input_shape = set_input_shape
        IExecutionContext.get_tensor_shape = get_tensor_shape
        IExecutionContext.set_tensor_address = set_tensor_address
        IExecutionContext.execute_async_v3 = execute_async_v3
    if bindings_api:
        def set_binding_shape(self, i, shape):
            rec(("set_binding_shape", i, tuple(shape)))
            name = self._engine._io[i][0]
            if not self._engine._accepts(name, tuple(shape)):
                return False  # setBindingDimensions returns bool
            self._shapes[name] = tuple(shape)
            return True

        def get_binding_shape(self, i):
            return self._shapes.get(self._engine._io[i][0], tuple(self._engine._io[i][2]))

        def execute_async_v2(self, bindings, stream_handle):
            rec(("execute_async_v2", stream_handle))
            return self._run({io[0]: ptr for io, ptr in zip(self._engine._io, bindings)})
        IExecutionContext.set_binding_shape = set_binding_shape
        IExecutionContext.get_binding_shape = get_binding_shape
        IExecutionContext.execute_async_v2 = execute_async_v2

    class Runtime(object):
        def __init__(self, logger):
            _adopt_logger(logger, "createInferRuntime")
            self._logger = logger

        def deserialize_cuda_engine(self, plan):
            """None for anything that is not this TensorRT's engine for this GPU, or whose plugins are not
            registered (the real runtime logs the reason and returns nullptr, which the binding returns as
            None; NVIDIA's samples register plugins before loading: samples/python/efficientdet/infer.py:43)."""
            try:
                data = json.loads(bytes(plan).decode())
                assert data.get("magic") == "trt-double"
            except Exception:
                _log(ILogger.ERROR, "1: [stdArchiveReader.cpp::StdArchiveReader::32] Error Code 1: Serialization "
                                    "(Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic tag does not "
                                    "match)")
                return None
            if data["tensorrt_version"] != version:
                _log(ILogger.ERROR, "The engine plan file is not compatible with this version of TensorRT, "
                                    "expecting library version {} got {}".format(version, data["tensorrt_version"]))
                return None
            if data["gpu"] != gpu_spec["name"]:
                _log(ILogger.ERROR, "The engine plan file is generated on an incompatible device")
                return None
            if data["has_plugin"] and "EfficientNMS_TRT" not in trt._registry:
                _log(ILogger.ERROR, "getPluginCreator could not find plugin: EfficientNMS_TRT version: 1")
                return None
            return ICudaEngine(data)
    trt.Runtime = Runtime
    trt.memory = memory
    return trt
