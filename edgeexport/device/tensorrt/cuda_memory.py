"""Device memory, pinned host memory, one stream, and what the GPU is: through pycuda (the Jetson's: JetPack 4.6
has no cuda-python for CUDA 10.2 / Python 3.6), or cuda-python on newer stacks.

Interface (the TensorRT runner, the calibrator, build_engine): ``device_alloc(nbytes) -> (pointer, owner)``,
``free(owner)``, ``pinned_empty(n, dtype)``, ``pinned_free(array)``, ``htod(ptr, pinned)``, ``dtoh(pinned, ptr)``,
``synchronize()``, ``stream_handle``, ``device_info() -> {"name", "compute_capability", "regs_per_block",
"free_bytes", "total_bytes"}``, ``close()``. Both backends work on the GPU they are made for (``gpu_id``, the
``_gpu<N>_`` of nvinfer's engine name) and keep nothing alive after ``close()``. Copies go from and to pinned memory
only: pycuda's ``memcpy_htod_async`` requires a page-locked source (pycuda v2022.1 doc/driver.rst:1565-1572).
Device-side (Python 3.6; numpy + pycuda or cuda-python).
"""
import ctypes

import numpy as np

from ..errors import BackendUnavailableError, UsageError


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def check_gpu_id(gpu_id, count):
    if not 0 <= int(gpu_id) < count:
        raise UsageError("--gpu-id {} asked for, but this machine has {} GPU(s) (ids 0-{})".format(
            gpu_id, count, count - 1))


class PyCudaMemory(object):
    """pycuda: a context on GPU ``gpu_id``, made as ``pycuda.autoinit`` makes its own (``cuda.init()``, then
    ``Device(n).make_context()``, popped at the end: pycuda/autoinit.py and tools.py make_default_context at
    v2022.1), but on the GPU asked for: autoinit takes CUDA_DEVICE, ~/.cuda_device or the first that works. A
    context exists before the Builder, as NVIDIA's 8.2 samples make one (samples/python/efficientdet/
    build_engine.py:24-25 at tag 8.2.1)."""

    name = "pycuda"

    def __init__(self, gpu_id=0):
        import pycuda.driver as cuda
        try:
            cuda.init()
            count = cuda.Device.count()
        except Exception as e:  # an installed pycuda that cannot reach a GPU raises its own error types
            raise BackendUnavailableError("pycuda is installed but cannot initialise CUDA ({}): is this a machine "
                                          "with an NVIDIA GPU and its driver?".format(_first_line(e)))
        check_gpu_id(gpu_id, count)
        self.cuda = cuda
        self.context = cuda.Device(int(gpu_id)).make_context()  # made current on this thread
        self.stream = cuda.Stream()
        self.stream_handle = self.stream.handle

    def device_alloc(self, nbytes):
        mem = self.cuda.mem_alloc(max(int(nbytes), 1))
        return int(mem), mem  # (pointer, owner kept alive by the caller)

    def pinned_empty(self, n, dtype):
        return self.cuda.pagelocked_empty(int(n), dtype)

    def pinned_free(self, array):
        # the array's base is its PagelockedHostAllocation, whose free() releases it now (doc/driver.rst:1037-1052)
        array.base.free()

    def htod(self, ptr, host):
        self.cuda.memcpy_htod_async(ptr, host, self.stream)

    def dtoh(self, host, ptr):
        self.cuda.memcpy_dtoh_async(host, ptr, self.stream)

    def synchronize(self):
        self.stream.synchronize()

    def free(self, owner):
        owner.free()

    def close(self):
        if self.context is not None:
            self.stream = None
            self.context.pop()
            self.context = None

    def device_info(self):
        cuda = self.cuda
        dev = cuda.Context.get_device()
        free, total = cuda.mem_get_info()
        major, minor = dev.compute_capability()
        return {"name": dev.name(), "compute_capability": "{}.{}".format(major, minor),
                "regs_per_block": int(dev.get_attribute(cuda.device_attribute.MAX_REGISTERS_PER_BLOCK)),
                "free_bytes": int(free), "total_bytes": int(total)}


class CudaPythonMemory(object):
    """cuda-python's runtime bindings, on GPU ``gpu_id`` (cudaSetDevice before anything else). Imported as
    ``cuda.bindings.runtime`` first (what TensorRT 11.1's samples use, samples/python/common_runtime.py), then as
    ``cuda.cudart`` (cuda-python 12.x; TensorRT 10.13's samples), which cuda-python 13 removed. Pinned host memory
    is cudaMallocHost viewed as a numpy array, as in TensorRT 10.13's samples/python/common_runtime.py
    HostDeviceMem, and freed with cudaFreeHost (``pinned_free``, or ``close`` for whatever is left)."""

    name = "cuda-python"

    def __init__(self, gpu_id=0):
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart
        self.rt = cudart
        self._pinned = {}
        self.stream = None
        try:
            count = self._call(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
            check_gpu_id(gpu_id, count)
            self._call(cudart.cudaSetDevice(int(gpu_id)), "cudaSetDevice")
            self.stream = self._call(cudart.cudaStreamCreate(), "cudaStreamCreate")
        except BackendUnavailableError as e:
            raise BackendUnavailableError("cuda-python is installed but cannot use CUDA ({}): is this a machine with "
                                          "an NVIDIA GPU and its driver?".format(e))
        self.stream_handle = int(self.stream)

    def _call(self, result, what):
        err, rest = result[0], result[1:]
        if err != self.rt.cudaError_t.cudaSuccess:
            raise BackendUnavailableError("{} failed: {}".format(what, getattr(err, "name", err)))
        return None if not rest else rest[0] if len(rest) == 1 else rest

    def device_alloc(self, nbytes):
        ptr = self._call(self.rt.cudaMalloc(max(int(nbytes), 1)), "cudaMalloc")
        return int(ptr), int(ptr)

    def pinned_empty(self, n, dtype):
        dtype = np.dtype(dtype)
        nbytes = max(int(n) * dtype.itemsize, 1)
        ptr = self._call(self.rt.cudaMallocHost(nbytes), "cudaMallocHost")
        raw = (ctypes.c_uint8 * nbytes).from_address(int(ptr))
        array = np.frombuffer(raw, dtype=np.uint8)[:int(n) * dtype.itemsize].view(dtype)
        self._pinned[int(ptr)] = raw
        return array

    def pinned_free(self, array):
        ptr = int(array.ctypes.data)
        if self._pinned.pop(ptr, None) is not None:
            self._call(self.rt.cudaFreeHost(ptr), "cudaFreeHost")

    def htod(self, ptr, host):
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
        if self.stream is not None:
            self.rt.cudaStreamDestroy(self.stream)
            self.stream = None

    def device_info(self):
        dev = self._call(self.rt.cudaGetDevice(), "cudaGetDevice")
        prop = self._call(self.rt.cudaGetDeviceProperties(dev), "cudaGetDeviceProperties")
        free, total = self._call(self.rt.cudaMemGetInfo(), "cudaMemGetInfo")
        name = prop.name.decode(errors="replace") if isinstance(prop.name, bytes) else str(prop.name)
        return {"name": name.rstrip("\x00"), "compute_capability": "{}.{}".format(prop.major, prop.minor),
                "regs_per_block": int(prop.regsPerBlock), "free_bytes": int(free), "total_bytes": int(total)}


def cuda_backend(gpu_id=0):
    """pycuda when importable, else cuda-python, on GPU ``gpu_id``; one clear error when neither is, or when CUDA
    cannot start."""
    try:
        import pycuda.driver  # noqa: F401
    except ImportError:
        pass
    else:
        return PyCudaMemory(gpu_id)
    try:
        return CudaPythonMemory(gpu_id)
    except ImportError:
        raise BackendUnavailableError(
            "neither pycuda nor cuda-python is installed: on a Jetson, bash jetson/setup.sh installs pycuda (by "
            "hand: export PATH=/usr/local/cuda/bin:$PATH && pip3 install --user -r jetson/requirements.txt)")


def nms_candidate_cap(device_info):
    """How many top-scoring candidates TensorRT's EfficientNMS_TRT keeps before NMS on this GPU: 5000 where a
    thread block has >= 65536 registers, else 2000 (plugin/efficientNMSPlugin: efficientNMSInference.cu:681-690 at
    tag 8.2.1, efficientNMSPlugin.cpp:82-91 initialize() at v8.6.1 ... v11.1; the header's 4096 is overwritten).
    Jetson Nano (sm_53) and TX2 (sm_62) have 32768 registers per block (CUDA C++ Programming Guide, "Technical
    Specifications per Compute Capability")."""
    return 5000 if int(device_info.get("regs_per_block", 65536)) >= 65536 else 2000
