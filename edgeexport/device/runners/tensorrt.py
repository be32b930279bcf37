"""TensorRT engine behind the runner interface: pinned host buffers, device buffers, one stream.

Works with TensorRT 8.2 (bindings, execute_async_v2) and 8.5 ... 10.x (named tensors, execute_async_v3) through
edgeexport.trt_api. Device-side (Python 3.6; numpy, tensorrt, pycuda or cuda-python).
"""
import os

import numpy as np

from ..trt import api as trt_api
from ..errors import BackendUnavailableError, InputFileError
from .base import Runner


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise BackendUnavailableError("TensorRT's Python module is not installed (it comes with JetPack: "
                                      "sudo apt-get install python3-libnvinfer)")
    return tensorrt


class TensorRTRunner(Runner):
    name = "tensorrt"

    def __init__(self, engine_path, trt=None, cuda=None):
        super(TensorRTRunner, self).__init__()
        self.engine_path = str(engine_path)
        self._trt, self._cuda = trt, cuda

    def _activate(self):
        trt = self._trt or import_tensorrt()
        if self._cuda is None:
            from ..trt.cuda_memory import cuda_backend
            self._cuda = cuda_backend()
        if not os.path.isfile(self.engine_path):
            raise InputFileError("engine not found: {}".format(self.engine_path))
        with open(self.engine_path, "rb") as f:
            plan = f.read()
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise InputFileError("TensorRT cannot deserialise {}: built by another TensorRT version or for another "
                                 "GPU; rebuild it with python3 -m edgeexport.build_engine".format(self.engine_path))
        self.context = self.engine.create_execution_context()
        self.io = trt_api.engine_io(trt, self.engine)
        self.inputs = [n for n, is_in, _, _ in self.io if is_in]
        self.buffers = {}
        for name, is_input, shape, dtype in self.io:
            full = trt_api.max_input_shape(trt, self.engine, name) if is_input else shape
            if -1 in full:  # an output with a dynamic batch: size it for the inputs' max batch
                max_b = trt_api.max_input_shape(trt, self.engine, self.inputs[0])[0]
                full = tuple(max_b if d == -1 else d for d in full)
            npdt = trt_api.to_numpy_dtype(dtype)
            host = self._cuda.pinned_empty(int(np.prod(full)), npdt)
            ptr, owner = self._cuda.device_alloc(host.nbytes)
            self.buffers[name] = (host, ptr, owner, npdt)

    def _infer(self, feed):
        for name in self.inputs:
            if name not in feed:
                raise InputFileError("feed lacks input {!r} (engine inputs: {})".format(name, self.inputs))
            x = np.ascontiguousarray(feed[name], dtype=self.buffers[name][3])
            host, ptr, _, _ = self.buffers[name]
            if x.size > host.size:
                raise InputFileError("input {!r} of shape {} exceeds the engine's maximum".format(name, x.shape))
            trt_api.set_input_shape(self.engine, self.context, name, x.shape)
            host[:x.size] = x.ravel()
            self._cuda.htod(ptr, host[:x.size])
        trt_api.execute(self.engine, self.context, {n: b[1] for n, b in self.buffers.items()},
                        self._cuda.stream_handle)
        outs = {}
        for name, is_input, _, _ in self.io:
            if is_input:
                continue
            host, ptr, _, npdt = self.buffers[name]
            shape = trt_api.output_shape(self.engine, self.context, name)
            n = int(np.prod(shape))
            self._cuda.dtoh(host[:n], ptr)
            outs[name] = (host, n, shape)
        self._cuda.synchronize()
        return {k: np.array(h[:n]).reshape(s) for k, (h, n, s) in outs.items()}

    def _deactivate(self):
        for host, ptr, owner, _ in self.buffers.values():
            self._cuda.free(owner)
        self.buffers = {}
        self.context = self.engine = self.runtime = None
