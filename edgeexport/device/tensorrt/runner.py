"""A TensorRT engine behind the runner interface: pinned host buffers, device buffers, one stream.

Works with TensorRT 8.2 (bindings, execute_async_v2) and 8.5 ... 11.x (named tensors, execute_async_v3) through
edgeexport.device.tensorrt.api. Refuses an engine whose build record does not match this TensorRT, this GPU or (given
the bundle's metadata) the bundle's ONNX. Device-side (Python 3.6; numpy, tensorrt, pycuda or cuda-python).
"""
import os

import numpy as np

from ..errors import BackendUnavailableError, InferenceError, InputFileError
from ..naming import engine_gpu_id
from ..runners.base import Runner
from . import api


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise BackendUnavailableError("TensorRT's Python module is not installed (it comes with JetPack: "
                                      "sudo apt-get install python3-libnvinfer)")
    if not hasattr(tensorrt, "Builder"):  # e.g. a folder of type stubs importing as an empty namespace package
        raise BackendUnavailableError("the module named tensorrt at {} is not TensorRT (it has no Builder)".format(
            list(getattr(tensorrt, "__path__", [])) or getattr(tensorrt, "__file__", "?")))
    return tensorrt


class TensorRTRunner(Runner):
    name = "tensorrt"

    def __init__(self, engine_path, trt=None, cuda=None, meta=None, check_record=True, gpu_id=None):
        """``meta``: the bundle's BundleMeta, to refuse an engine built from another ONNX; ``check_record=False``
        runs an engine without looking at its build record (build_engine's own check of what it just built).
        ``cuda``: a CUDA backend to share (the caller closes it); by default the runner makes its own on
        ``gpu_id`` (default: the ``_gpu<N>_`` of the engine's name) and closes it when deactivated."""
        super(TensorRTRunner, self).__init__()
        self.engine_path = str(engine_path)
        self._trt, self._cuda, self.meta, self.check_record = trt, cuda, meta, check_record
        self.gpu_id = engine_gpu_id(self.engine_path) if gpu_id is None else int(gpu_id)
        self._own_cuda = cuda is None
        self.buffers = {}

    def _activate(self):
        trt = self._trt or import_tensorrt()
        if not os.path.isfile(self.engine_path):
            raise InputFileError("engine not found: {}; build it: python3 -m edgeexport.build_engine BUNDLE".format(
                self.engine_path))
        if self._own_cuda:
            from .cuda_memory import cuda_backend
            self._cuda = cuda_backend(self.gpu_id)
        try:
            self._load(trt)
        except BaseException:  # whatever stops the start, nothing it allocated (or the context) outlives it
            self._release()
            raise

    def _load(self, trt):
        self.device_info = self._cuda.device_info()
        if self.check_record:
            from ..bundle import file_sha256
            from .engine_record import check_runnable
            check_runnable(self.engine_path, trt.__version__, self.device_info, file_sha256(self.engine_path),
                           self.meta)
        with open(self.engine_path, "rb") as f:
            plan = f.read()
        self.logger = api.get_logger(trt)
        api.init_plugins(trt, self.logger)  # before deserialising: an engine holding EfficientNMS_TRT needs it
        self.runtime = trt.Runtime(self.logger)
        self.engine = api.deserialize(trt, self.runtime, plan, self.engine_path)
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise InferenceError("TensorRT could not create an execution context for {} (out of GPU memory?)".format(
                self.engine_path))
        self.io = api.engine_io(trt, self.engine)
        self.inputs = [n for n, is_in, _, _ in self.io if is_in]
        for name, is_input, shape, dtype in self.io:
            full = api.max_input_shape(trt, self.engine, name) if is_input else shape
            if -1 in full:  # an output with a dynamic batch: size it for the inputs' max batch
                max_b = api.max_input_shape(trt, self.engine, self.inputs[0])[0]
                full = tuple(max_b if d == -1 else d for d in full)
            npdt = api.to_numpy_dtype(dtype)
            host = self._cuda.pinned_empty(int(np.prod(full)), npdt)
            try:
                ptr, owner = self._cuda.device_alloc(host.nbytes)
            except BaseException:
                self._cuda.pinned_free(host)
                raise
            self.buffers[name] = (host, ptr, owner, npdt)

    @property
    def precision(self):
        """The precision the engine was built for, from its build record (None when it has none)."""
        from .engine_record import EngineRecord
        record = EngineRecord.load(self.engine_path)
        return record["precision"] if record is not None else None

    @property
    def nms_candidate_cap(self):
        """EfficientNMS_TRT's pre-NMS candidate cap on this GPU (see trt.cuda_memory.nms_candidate_cap)."""
        from .cuda_memory import nms_candidate_cap
        return nms_candidate_cap(self.device_info)

    def _infer(self, feed):
        for name in self.inputs:
            if name not in feed:
                raise InferenceError("feed lacks input {!r} (engine inputs: {})".format(name, self.inputs))
            x = np.ascontiguousarray(feed[name], dtype=self.buffers[name][3])
            host, ptr, _, _ = self.buffers[name]
            if x.size > host.size:
                raise InferenceError("input {!r} of shape {} exceeds the engine's maximum".format(name, list(x.shape)))
            api.set_input_shape(self.engine, self.context, name, x.shape)
            host[:x.size] = x.ravel()
            self._cuda.htod(ptr, host[:x.size])
        api.execute(self.engine, self.context, {n: b[1] for n, b in self.buffers.items()}, self._cuda.stream_handle)
        outs = {}
        for name, is_input, _, _ in self.io:
            if is_input:
                continue
            host, ptr, _, npdt = self.buffers[name]
            shape = api.output_shape(self.engine, self.context, name)
            n = int(np.prod(shape))
            self._cuda.dtoh(host[:n], ptr)
            outs[name] = (host, n, shape)
        self._cuda.synchronize()
        return {k: np.array(h[:n]).reshape(s) for k, (h, n, s) in outs.items()}

    def _deactivate(self):
        self._release()

    def _release(self):
        """Device and pinned buffers freed, TensorRT's objects dropped, then the runner's own CUDA context closed:
        a runner activated again and again holds no more memory than once."""
        for host, ptr, owner, _ in self.buffers.values():
            self._cuda.free(owner)
            self._cuda.pinned_free(host)
        self.buffers = {}
        self.context = self.engine = self.runtime = None
        if self._own_cuda and self._cuda is not None:
            self._cuda.close()
            self._cuda = None
