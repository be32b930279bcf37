"""A test double of the ``tensorrt`` Python module, in two API generations, implementing only documented API:

- "8.2" (Jetson Nano): EXPLICIT_BATCH flag, ``config.max_workspace_size`` (no memory pools), ``build_engine`` and
  ``build_serialized_network``, the bindings API, ``context.set_binding_shape``, ``execute_async_v2``;
- "10": ``set_memory_pool_limit(MemoryPoolType.WORKSPACE, n)`` (no ``max_workspace_size``), named I/O tensors
  (``num_io_tensors``, ``get_tensor_name/mode/shape/dtype``), ``set_input_shape``, ``set_tensor_address``,
  ``execute_async_v3``; no bindings API, no ``build_engine``, no ``execute_async_v2``.

The "engine" is the ONNX itself (plus the build settings) and inference runs it with ONNX Runtime, so the runner
is exercised end to end. Everything it was asked is recorded in ``calls`` for the tests to assert.
"""
import base64
import json
import types

import numpy as np


class _Enum(object):
    def __init__(self, name, value):
        self.name, self.value = name, value

    def __int__(self):
        return self.value

    def __eq__(self, other):
        return isinstance(other, _Enum) and (self.name, self.value) == (other.name, other.value)

    def __hash__(self):
        return hash((self.name, self.value))

    def __repr__(self):
        return self.name


def _enum_class(name, members):
    return type(name, (), {m: _Enum(m, i) for i, m in enumerate(members)})


class FakeCuda(object):
    """Device memory as numpy byte arrays keyed by fake pointers (the runner's cuda backend interface)."""

    def __init__(self):
        self.memory, self._next, self.stream_handle = {}, 4096, 7

    def device_alloc(self, nbytes):
        ptr = self._next
        self._next += int(nbytes) + 256
        self.memory[ptr] = np.zeros(int(nbytes), np.uint8)
        return ptr, ptr

    def pinned_empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def htod(self, ptr, host):
        raw = np.ascontiguousarray(host).view(np.uint8).ravel()
        self.memory[ptr][:raw.size] = raw

    def dtoh(self, host, ptr):
        raw = host.view(np.uint8).reshape(-1)
        raw[:] = self.memory[ptr][:raw.size]

    def synchronize(self):
        pass

    def free(self, owner):
        self.memory.pop(owner, None)


def make_tensorrt(generation="10", fast_fp16=True, fast_int8=True, dla_cores=0, parser_errors=None,
                  rename_output=None, cuda=None):
    """A fresh double module. ``parser_errors``: descriptions the parser reports instead of parsing;
    ``rename_output``: (old, new) to build a wrong engine; ``cuda``: the FakeCuda whose memory inference reads."""
    new = generation != "8.2"
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0" if new else "8.2.1.8"
    trt.calls = []
    rec = trt.calls.append
    trt.NetworkDefinitionCreationFlag = _enum_class("NetworkDefinitionCreationFlag", ["EXPLICIT_BATCH"])
    trt.BuilderFlag = _enum_class("BuilderFlag", ["FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT"])
    trt.DeviceType = _enum_class("DeviceType", ["GPU", "DLA"])
    trt.DataType = _enum_class("DataType", ["FLOAT", "HALF", "INT8", "INT32", "BOOL"])
    if new:
        trt.TensorIOMode = _enum_class("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
        trt.MemoryPoolType = _enum_class("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM"])

    class Logger(object):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self, min_severity=2):
            self.min_severity = min_severity
    trt.Logger = Logger

    class INetworkDefinition(object):
        def __init__(self, flags):
            self.flags, self.inputs, self.outputs, self.onnx = flags, [], [], None

    class IOptimizationProfile(object):
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, min, opt, max):
            self.shapes[name] = (tuple(min), tuple(opt), tuple(max))
            rec(("profile.set_shape", name, tuple(min), tuple(opt), tuple(max)))

        def get_shape(self, name):
            return self.shapes[name]

    class ITimingCache(object):
        def __init__(self, data):
            self.data = bytes(data) or b"timing-cache-v1"

        def serialize(self):
            return self.data + b"+"

    class IBuilderConfig(object):
        def __init__(self):
            self.flags, self.profiles, self.int8_calibrator, self.pools = set(), [], None, {}
            self.default_device_type, self.DLA_core, self.timing_cache = trt.DeviceType.GPU, -1, None
            if not new:
                self.max_workspace_size = 0

        def set_flag(self, flag):
            self.flags.add(flag)

        def get_flag(self, flag):
            return flag in self.flags

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def set_calibration_profile(self, profile):
            self.calibration_profile = profile

        def create_timing_cache(self, data):
            return ITimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.timing_cache = cache
            return True

        def get_timing_cache(self):
            return self.timing_cache

    if new:
        def set_memory_pool_limit(self, pool, size):
            self.pools[pool] = size
        IBuilderConfig.set_memory_pool_limit = set_memory_pool_limit

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
            self.network, self.errors = network, []

        def parse(self, model):
            if parser_errors:
                self.errors = [ParserError(i, d) for i, d in enumerate(parser_errors)]
                return False
            import onnx
            proto = onnx.load_from_string(bytes(model))
            dims = lambda v: [d.dim_value if d.dim_value else -1 for d in v.type.tensor_type.shape.dim]
            elem = {1: "FLOAT", 10: "HALF", 6: "INT32", 7: "INT32"}
            self.network.inputs = [(i.name, dims(i), elem[i.type.tensor_type.elem_type]) for i in proto.graph.input]
            self.network.outputs = [(o.name, dims(o), elem[o.type.tensor_type.elem_type]) for o in proto.graph.output]
            self.network.onnx = bytes(model)
            return True

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, i):
            return self.errors[i]
    trt.OnnxParser = OnnxParser

    class IInt8EntropyCalibrator2(object):
        def __init__(self):
            pass
    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2

    class Builder(object):
        def __init__(self, logger):
            self.logger = logger
            self.platform_has_fast_fp16, self.platform_has_fast_int8 = fast_fp16, fast_int8
            self.num_DLA_cores = dla_cores

        def create_network(self, flags=0):
            rec(("create_network", flags))
            return INetworkDefinition(flags)

        def create_builder_config(self):
            return IBuilderConfig()

        def create_optimization_profile(self):
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            rec(("build_serialized_network",))
            flags = sorted(f.name for f in config.flags)
            if config.int8_calibrator is not None:  # calibration: pull batches until None, then cache
                cal, batches = config.int8_calibrator, 0
                cache = cal.read_calibration_cache()
                if cache is None:
                    while cal.get_batch([network.inputs[0][0]]) is not None:
                        batches += 1
                    cal.write_calibration_cache(b"TRT-8201-EntropyCalibration2\ninput: 3c010a14\n")
                rec(("calibrated", batches, cache is not None))
            outputs = [list(o) for o in network.outputs]
            if rename_output:
                outputs = [[rename_output[1] if o[0] == rename_output[0] else o[0]] + o[1:] for o in outputs]
            plan = {"inputs": network.inputs, "outputs": outputs, "flags": flags,
                    "profiles": [{k: v for k, v in p.shapes.items()} for p in config.profiles],
                    "onnx": base64.b64encode(network.onnx).decode(),
                    "workspace": config.pools.get(trt.MemoryPoolType.WORKSPACE) if new else config.max_workspace_size,
                    "dla_core": config.DLA_core if config.default_device_type == trt.DeviceType.DLA else None}
            return json.dumps(plan).encode()

    if not new:
        def build_engine(self, network, config):
            return Runtime(self.logger).deserialize_cuda_engine(self.build_serialized_network(network, config))
        Builder.build_engine = build_engine
    trt.Builder = Builder

    class ICudaEngine(object):
        def __init__(self, plan):
            self.plan = plan
            self.io = [(n, True, s, d) for n, s, d in plan["inputs"]] + [(n, False, s, d) for n, s, d in plan["outputs"]]

        def create_execution_context(self):
            return IExecutionContext(self)

        def serialize(self):
            return json.dumps(self.plan).encode()

        def _profile(self, name):
            p = self.plan["profiles"][0][name] if self.plan["profiles"] else None
            return p

    if new:
        ICudaEngine.num_io_tensors = property(lambda self: len(self.io))
        ICudaEngine.get_tensor_name = lambda self, i: self.io[i][0]
        ICudaEngine.get_tensor_mode = lambda self, name: trt.TensorIOMode.INPUT if dict(
            (n, i) for n, i, _, _ in self.io)[name] else trt.TensorIOMode.OUTPUT
        ICudaEngine.get_tensor_shape = lambda self, name: tuple(dict((n, s) for n, _, s, _ in self.io)[name])
        ICudaEngine.get_tensor_dtype = lambda self, name: getattr(trt.DataType, dict((n, d) for n, _, _, d in self.io)[name])
        ICudaEngine.get_tensor_profile_shape = lambda self, name, profile: self._profile(name)
    else:
        ICudaEngine.num_bindings = property(lambda self: len(self.io))
        ICudaEngine.get_binding_name = lambda self, i: self.io[i][0]
        ICudaEngine.get_binding_index = lambda self, name: [n for n, _, _, _ in self.io].index(name)
        ICudaEngine.binding_is_input = lambda self, i: self.io[i][1]
        ICudaEngine.get_binding_shape = lambda self, i: tuple(self.io[i][2])
        ICudaEngine.get_binding_dtype = lambda self, i: getattr(trt.DataType, self.io[i][3])
        ICudaEngine.get_profile_shape = lambda self, profile, i: self._profile(self.io[i][0])

    class IExecutionContext(object):
        def __init__(self, engine):
            self.engine, self.shapes, self.addresses = engine, {}, {}
            self._session = None

        def _run(self, pointers):
            import onnxruntime as ort
            if self._session is None:
                self._session = ort.InferenceSession(base64.b64decode(self.engine.plan["onnx"]),
                                                     providers=["CPUExecutionProvider"])
            feeds = {}
            for name, is_in, _, _ in self.engine.io:
                if is_in:
                    shape = self.shapes[name]
                    n = int(np.prod(shape))
                    feeds[name] = cuda.memory[pointers[name]][:n * 4].view(np.float32).reshape(shape)
            outs = self._session.run(None, feeds)
            for (name, _, _, _), arr in zip([io for io in self.engine.io if not io[1]], outs):
                raw = np.ascontiguousarray(arr).view(np.uint8).ravel()
                cuda.memory[pointers[name]][:raw.size] = raw
                self.shapes[name] = arr.shape
            return True

    if new:
        def set_input_shape(self, name, shape):
            rec(("set_input_shape", name, tuple(shape)))
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            return self.shapes[name]

        def set_tensor_address(self, name, ptr):
            self.addresses[name] = ptr
            return True

        def execute_async_v3(self, stream_handle):
            rec(("execute_async_v3", stream_handle))
            return self._run(self.addresses)
        IExecutionContext.set_input_shape = set_input_shape
        IExecutionContext.get_tensor_shape = get_tensor_shape
        IExecutionContext.set_tensor_address = set_tensor_address
        IExecutionContext.execute_async_v3 = execute_async_v3
    else:
        def set_binding_shape(self, i, shape):
            rec(("set_binding_shape", i, tuple(shape)))
            self.shapes[self.engine.io[i][0]] = tuple(shape)
            return True

        def get_binding_shape(self, i):
            return self.shapes.get(self.engine.io[i][0], tuple(self.engine.io[i][2]))

        def execute_async_v2(self, bindings, stream_handle):
            rec(("execute_async_v2", stream_handle))
            return self._run({io[0]: ptr for io, ptr in zip(self.engine.io, bindings)})
        IExecutionContext.set_binding_shape = set_binding_shape
        IExecutionContext.get_binding_shape = get_binding_shape
        IExecutionContext.execute_async_v2 = execute_async_v2

    class Runtime(object):
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, plan):
            try:
                return ICudaEngine(json.loads(bytes(plan).decode()))
            except (ValueError, UnicodeDecodeError):
                return None
    trt.Runtime = Runtime
    return trt
