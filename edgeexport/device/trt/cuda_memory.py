"""Device memory, pinned host memory and one stream: through pycuda, or cuda-python where pycuda is absent.

Device-side (Python 3.6; numpy + pycuda or cuda-python). Imported only by the TensorRT runner and calibrator.
"""
import numpy as np

from ..errors import BackendUnavailableError


class _PyCuda(object):
    name = "pycuda"

    def __init__(self):
        import pycuda.autoinit  # noqa: F401  (creates the context on the current device)
        import pycuda.driver as cuda
        self.cuda = cuda
        self.stream = cuda.Stream()
        self.stream_handle = self.stream.handle

    def device_alloc(self, nbytes):
        mem = self.cuda.mem_alloc(max(int(nbytes), 1))
        return int(mem), mem  # (pointer, owner kept alive by the caller)

    def pinned_empty(self, shape, dtype):
        return self.cuda.pagelocked_empty(shape, dtype)

    def htod(self, ptr, host):
        self.cuda.memcpy_htod_async(ptr, host, self.stream)

    def dtoh(self, host, ptr):
        self.cuda.memcpy_dtoh_async(host, ptr, self.stream)

    def synchronize(self):
        self.stream.synchronize()

    def free(self, owner):
        owner.free()


class _CudaPython(object):
    name = "cuda-python"

    def __init__(self):
        try:
            from cuda import cudart
        except ImportError:
            from cuda.bindings import runtime as cudart
        self.rt = cudart
        err, self.stream = cudart.cudaStreamCreate()
        self._check(err, "cudaStreamCreate")
        self.stream_handle = int(self.stream)

    def _check(self, err, what):
        if int(err) != 0:
            raise BackendUnavailableError("{} failed with CUDA error {}".format(what, int(err)))

    def device_alloc(self, nbytes):
        err, ptr = self.rt.cudaMalloc(max(int(nbytes), 1))
        self._check(err, "cudaMalloc")
        return int(ptr), int(ptr)

    def pinned_empty(self, shape, dtype):
        # plain host memory: cuda-python has no ready numpy view of cudaHostAlloc; copies stay correct, just slower
        return np.empty(shape, dtype)

    def htod(self, ptr, host):
        self._check(self.rt.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes,
                                            self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream)[0],
                    "cudaMemcpyAsync")

    def dtoh(self, host, ptr):
        self._check(self.rt.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes,
                                            self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream)[0],
                    "cudaMemcpyAsync")

    def synchronize(self):
        self._check(self.rt.cudaStreamSynchronize(self.stream)[0], "cudaStreamSynchronize")

    def free(self, owner):
        self.rt.cudaFree(owner)


def cuda_backend():
    """pycuda when importable, else cuda-python; a clear error when neither is."""
    try:
        import pycuda.driver  # noqa: F401
        return _PyCuda()
    except ImportError:
        pass
    try:
        return _CudaPython()
    except ImportError:
        raise BackendUnavailableError("neither pycuda nor cuda-python is installed: pip3 install pycuda "
                                      "(see requirements-device.txt)")
