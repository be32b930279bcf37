"""pycuda.driver, the parts edgeexport uses (pycuda v2022.1, doc/driver.rst): init (cuInit: pycuda's RuntimeError
where no GPU works, EDGEEXPORT_FAKE_CUDA_FAILS=1), Device (count, name, compute_capability, get_attribute,
make_context: a context pushed on this thread's stack), Context (get_device of the current context, pop),
mem_alloc -> DeviceAllocation (int() is the pointer, free()), pagelocked_empty (an array whose base is a
PagelockedHostAllocation with free()), memcpy_htod_async / memcpy_dtoh_async (dest, src, stream; page-locked
host memory only), Stream (handle, synchronize), mem_get_info, Event (record, synchronize, time_till in ms).
Errors derive from pycuda.driver.Error. EDGEEXPORT_FAKE_GPU_COUNT: how many GPUs (default 1); the contexts made
and popped, by device number, are appended to the file EDGEEXPORT_FAKE_CUDA_LOG names ("make N", "pop N")."""
import os
import time

import numpy as np

import _edgeexport_fake_gpu as _gpu

_mem = _gpu.MEMORY
_stack = []  # the calling thread's context stack (one thread here)


def _log(what, device):
    if os.environ.get("EDGEEXPORT_FAKE_CUDA_LOG"):
        with open(os.environ["EDGEEXPORT_FAKE_CUDA_LOG"], "a") as f:
            f.write("{} {}\n".format(what, device.number))


class Error(Exception):
    pass


class LogicError(Error):
    pass


class RuntimeError(Error):  # noqa: A001  (pycuda's own name)
    pass


class device_attribute(object):
    MAX_REGISTERS_PER_BLOCK = "MAX_REGISTERS_PER_BLOCK"


def init(flags=0):
    if os.environ.get("EDGEEXPORT_FAKE_CUDA_FAILS"):
        raise RuntimeError("cuInit failed: no CUDA-capable device is detected")


class Device(object):
    def __init__(self, number):
        if not 0 <= number < Device.count():
            raise LogicError("cuDeviceGet failed: invalid device ordinal")
        self.number = number

    @staticmethod
    def count():
        return int(os.environ.get("EDGEEXPORT_FAKE_GPU_COUNT", "1"))

    def name(self):
        return _mem.gpu["name"]

    def compute_capability(self):
        major, minor = _mem.gpu["compute_capability"].split(".")
        return int(major), int(minor)

    def get_attribute(self, attr):
        if attr == device_attribute.MAX_REGISTERS_PER_BLOCK:
            return _mem.gpu["regs_per_block"]
        raise LogicError("attribute not modelled: {}".format(attr))

    def total_memory(self):
        return _mem.gpu["total_bytes"]

    def make_context(self, flags=0):
        context = Context(self)
        _stack.append(context)
        _log("make", self)
        return context


class Context(object):
    def __init__(self, device):
        self._device = device

    @staticmethod
    def get_device():
        if not _stack:
            raise LogicError("cuCtxGetDevice failed: invalid device context")
        return _stack[-1]._device

    def pop(self):
        if not _stack or _stack[-1] is not self:
            raise LogicError("cuCtxPopCurrent failed: invalid device context")
        _stack.pop()
        _log("pop", self._device)


class DeviceAllocation(object):
    def __init__(self, nbytes):
        self.ptr, _ = _mem.device_alloc(nbytes)

    def __int__(self):
        return self.ptr

    __index__ = __int__

    def free(self):
        _mem.free(self.ptr)


def mem_alloc(nbytes):
    return DeviceAllocation(nbytes)


def mem_get_info():
    return _mem.gpu["free_bytes"], _mem.gpu["total_bytes"]


class PagelockedHostAllocation(bytearray):
    """The ``base`` of a pagelocked_empty array; free() releases it now (doc/driver.rst:1037-1052)."""

    def free(self):
        _mem.release_pinned(self)


def pagelocked_empty(shape, dtype):
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    allocation = _mem.register_pinned(PagelockedHostAllocation(max(nbytes, dtype.itemsize)))
    return np.ndarray(shape, dtype, buffer=allocation)  # its base is the allocation, as pycuda's


def memcpy_htod_async(dest, src, stream=None):
    _mem.htod(int(dest), src)


def memcpy_dtoh_async(dest, src, stream=None):
    _mem.dtoh(dest, int(src))


class Stream(object):
    handle = 7

    def synchronize(self):
        pass


class Event(object):
    def record(self, stream=None):
        self.t = time.perf_counter()

    def synchronize(self):
        pass

    def time_till(self, other):
        return (other.t - self.t) * 1000.0
