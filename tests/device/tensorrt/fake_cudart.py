"""cuda-python's runtime bindings (``cuda.bindings.runtime``), the calls edgeexport's CudaPythonMemory makes, as
TensorRT 10.13's samples use them (samples/python/common_runtime.py: every call returns a tuple, the
``cudaError_t`` first, then the result; cudaMallocHost/cudaFreeHost, cudaMalloc/cudaFree, cudaMemcpyAsync with a
cudaMemcpyKind, cudaStreamCreate/Synchronize/Destroy). Host memory is real (ctypes buffers, so numpy can view it);
device memory is bytes keyed by pointer. ``calls`` records each call in order, ``host`` and ``device`` what is
allocated now, ``current`` the device cudaSetDevice chose."""
import ctypes
import types


class cudaError_t(object):
    cudaSuccess = "cudaSuccess"
    cudaErrorInvalidDevice = "cudaErrorInvalidDevice"


class cudaMemcpyKind(object):
    cudaMemcpyHostToDevice = "cudaMemcpyHostToDevice"
    cudaMemcpyDeviceToHost = "cudaMemcpyDeviceToHost"


class FakeRuntime(object):
    cudaError_t = cudaError_t
    cudaMemcpyKind = cudaMemcpyKind

    def __init__(self, devices=2):
        self.devices, self.current, self.calls = devices, 0, []
        self.host, self.device, self.streams, self._next = {}, {}, set(), 1 << 20

    def _ok(self, name, *result):
        self.calls.append(name)
        return (cudaError_t.cudaSuccess,) + result

    def cudaGetDeviceCount(self):
        return self._ok("cudaGetDeviceCount", self.devices)

    def cudaSetDevice(self, n):
        if not 0 <= n < self.devices:
            return (cudaError_t.cudaErrorInvalidDevice,)
        self.current = n
        return self._ok("cudaSetDevice({})".format(n))

    def cudaGetDevice(self):
        return self._ok("cudaGetDevice", self.current)

    def cudaGetDeviceProperties(self, n):
        prop = types.SimpleNamespace(name="Fake GPU {}".format(n).encode(), major=8, minor=6, regsPerBlock=65536)
        return self._ok("cudaGetDeviceProperties", prop)

    def cudaMemGetInfo(self):
        return self._ok("cudaMemGetInfo", 20 << 30, 24 << 30)

    def cudaStreamCreate(self):
        self._next += 64
        self.streams.add(self._next)
        return self._ok("cudaStreamCreate", self._next)

    def cudaStreamDestroy(self, stream):
        self.streams.remove(int(stream))
        return self._ok("cudaStreamDestroy")

    def cudaStreamSynchronize(self, stream):
        return self._ok("cudaStreamSynchronize")

    def cudaMallocHost(self, nbytes):
        buf = (ctypes.c_uint8 * nbytes)()
        self.host[ctypes.addressof(buf)] = buf
        return self._ok("cudaMallocHost", ctypes.addressof(buf))

    def cudaFreeHost(self, ptr):
        del self.host[int(ptr)]
        return self._ok("cudaFreeHost")

    def cudaMalloc(self, nbytes):
        self._next += nbytes + 256
        self.device[self._next] = bytearray(nbytes)
        return self._ok("cudaMalloc", self._next)

    def cudaFree(self, ptr):
        del self.device[int(ptr)]
        return self._ok("cudaFree")

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
            self.device[int(dst)][:nbytes] = ctypes.string_at(src, nbytes)
        else:
            ctypes.memmove(dst, bytes(self.device[int(src)][:nbytes]), nbytes)
        return self._ok("cudaMemcpyAsync")
