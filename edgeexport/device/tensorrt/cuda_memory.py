"""Device memory, pinned host memory, one stream, and what the GPU is: through pycuda (the Jetson's: JetPack 4.6
has no cuda-python for CUDA 10.2 / Python 3.6), or cuda-python on newer stacks.

Interface (the TensorRT runner, the calibrator, build_engine): ``device_alloc(nbytes) -> (pointer, owner)``,
``pinned_empty(n, dtype)``, ``htod(ptr, host)``, ``dtoh(host, ptr)``, ``synchronize()``, ``free(owner)``,
``stream_handle``, ``device_info() -> {"name", "compute_capability", "regs_per_block", "free_bytes",
"total_bytes"}``. Device-side (Python 3.6; numpy + pycuda or cuda-python).
"""
import ctypes

import numpy as np

from ..errors import BackendUnavailableError


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


class PyCudaMemory(object):
    """pycuda (https://documen.tician.de/pycuda/driver.html): ``pycuda.autoinit`` makes a context on device 0,
    as NVIDIA's 8.2 samples do before building (samples/python/efficientdet/build_engine.py:24-25 at tag 8.2.1)."""

    name = "pycuda"

    def __init__(self):
        import pycuda.driver as cuda
        try:
            import pycuda.autoinit  # noqa: F401  (creates the context on the current device)
        except Exception as e:  # an installed pycuda that cannot reach a GPU raises its own error types
            raise BackendUnavailableError("pycuda is installed but cannot initialise CUDA ({}): is this a machine "
                                          "with an NVIDIA GPU and its driver?".format(_first_line(e)))
        self.cuda = cuda
        self.stream = cuda.Stream()
        self.stream_handle = self.stream.handle

    def device_alloc(self, nbytes):
        mem = self.cuda.mem_alloc(max(int(nbytes), 1))
        return int(mem), mem  # (pointer, owner kept alive by the caller)

    def pinned_empty(self, n, dtype):
        return self.cuda.pagelocked_empty(int(n), dtype)

    def htod(self, ptr, host):
        self.cuda.memcpy_htod_async(ptr, host, self.stream)

    def dtoh(self, host, ptr):
        self.cuda.memcpy_dtoh_async(host, ptr, self.stream)

    def synchronize(self):
        self.stream.synchronize()

    def free(self, owner):
        owner.free()

    def device_info(self):
        cuda = self.cuda
        dev = cuda.Context.get_device()
        free, total = cuda.mem_get_info()
        major, minor = dev.compute_capability()
        return {"name": dev.name(), "compute_capability": "{}.{}".format(major, minor),
                "regs_per_block": int(dev.get_attribute(cuda.device_attribute.MAX_REGISTERS_PER_BLOCK)),
                "free_bytes": int(free), "total_bytes": int(total)}


class CudaPythonMemory(object):
    """cuda-python's runtime bindings. Imported as ``cuda.bindings.runtime`` first (what TensorRT 11.1's samples
    use, samples/python/common_runtime.py), then as ``cuda.cudart`` (cuda-python 12.x; TensorRT 10.13's samples),
    which cuda-python 13 removed. Pinned host memory is cudaMallocHost viewed as a numpy array, as in TensorRT
    10.13's samples/python/common_runtime.py HostDeviceMem."""

    name = "cuda-python"

    def __init__(self):
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart
        self.rt = cudart
        self._pinned = {}
        try:
            self.stream = self._call(cudart.cudaStreamCreate(), "cudaStreamCreate")
        except BackendUnavailableError as e:
            raise BackendUnavailableError("cuda-python is installed but cannot use CUDA ({}): is this a machine with "
                                          "an NVIDIA GPU and its driver?".format(e))
        self.stream_handle = int(self.stream)

    def _call(self, result, what):
        err, rest = result[0], result[1:]
        if err != self.rt.cudaError_t.cudaSuccess:
            raise BackendUnavailableError("{} failed: {}".format(what, getattr(err, "name", err)))
        return rest[0] if len(rest) == 1 else rest

    def device_alloc(self, nbytes):
        ptr = self._call(self.rt.cudaMalloc(max(int(nbytes), 1)), "cudaMalloc")
        return int(ptr), int(ptr)

    def pinned_empty(self, n, dtype):
        dtype = np.dtype(dtype)
        nbytes = max(int(n) * dtype.itemsize, 1)
        ptr = self._call(self.rt.cudaMallocHost(nbytes), "cudaMallocHost")
        raw = (ctypes.c_uint8 * nbytes).from_address(int(ptr))
        array = np.frombuffer(raw, dtype=np.uint8)[:int(n) * dtype.itemsize].view(dtype)
        self._pinned[int(ptr)] = raw  # freed with the backend (close())
        return array

    def htod(self, ptr, host):
        host = np.ascontiguousarray(host)
        self._call(self.rt.cudaMemcpyAsync(int(ptr), host.ctypes.data, host.nbytes,
                                           self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream),
                   "cudaMemcpyAsync")

    def dtoh(self, host, ptr):
        self._call(self.rt.cudaMemcpyAsync(host.ctypes.data, int(ptr), host.nbytes,
                                           self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream),
                   "cudaMemcpyAsync")

    def synchronize(self):
        self._call(self.rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def free(self, owner):
        self._call(self.rt.cudaFree(owner), "cudaFree")

    def close(self):
        for ptr in list(self._pinned):
            self.rt.cudaFreeHost(ptr)
            del self._pinned[ptr]

    def device_info(self):
        dev = self._call(self.rt.cudaGetDevice(), "cudaGetDevice")
        prop = self._call(self.rt.cudaGetDeviceProperties(dev), "cudaGetDeviceProperties")
        free, total = self._call(self.rt.cudaMemGetInfo(), "cudaMemGetInfo")
        name = prop.name.decode(errors="replace") if isinstance(prop.name, bytes) else str(prop.name)
        return {"name": name.rstrip("\x00"), "compute_capability": "{}.{}".format(prop.major, prop.minor),
                "regs_per_block": int(prop.regsPerBlock), "free_bytes": int(free), "total_bytes": int(total)}


def cuda_backend():
    """pycuda when importable, else cuda-python; one clear error when neither is, or when CUDA cannot start."""
    try:
        import pycuda.driver  # noqa: F401
    except ImportError:
        pass
    else:
        return PyCudaMemory()
    try:
        return CudaPythonMemory()
    except ImportError:
        raise BackendUnavailableError(
            "neither pycuda nor cuda-python is installed: on a Jetson, export PATH=/usr/local/cuda/bin:$PATH && "
            "pip3 install -r jetson/requirements.txt (pycuda<=2022.1 on Python 3.6)")


def nms_candidate_cap(device_info):
    """How many top-scoring candidates TensorRT's EfficientNMS_TRT keeps before NMS on this GPU: 5000 where a
    thread block has >= 65536 registers, else 2000 (plugin/efficientNMSPlugin: efficientNMSInference.cu:681-690 at
    tag 8.2.1, efficientNMSPlugin.cpp:82-91 initialize() at v8.6.1 ... v11.1; the header's 4096 is overwritten).
    Jetson Nano (sm_53) and TX2 (sm_62) have 32768 registers per block (CUDA C++ Programming Guide, "Technical
    Specifications per Compute Capability")."""
    return 5000 if int(device_info.get("regs_per_block", 65536)) >= 65536 else 2000
