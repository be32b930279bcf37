"""pycuda.driver, the parts edgeexport uses: Device (name, compute_capability, get_attribute), Context.get_device,
mem_alloc -> DeviceAllocation (int() is the pointer, free()), pagelocked_empty, memcpy_htod_async /
memcpy_dtoh_async (dest, src, stream), Stream (handle, synchronize), mem_get_info, Event (record, synchronize,
time_till in ms). Errors derive from pycuda.driver.Error."""
import time

import numpy as np

import _edgeexport_fake_gpu as _gpu

_mem = _gpu.MEMORY


class Error(Exception):
    pass


class LogicError(Error):
    pass


class RuntimeError(Error):  # noqa: A001  (pycuda's own name)
    pass


class device_attribute(object):
    MAX_REGISTERS_PER_BLOCK = "MAX_REGISTERS_PER_BLOCK"


def init(flags=0):
    pass


class Device(object):
    def __init__(self, number):
        self.number = number

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
        return Context()


class Context(object):
    @staticmethod
    def get_device():
        return Device(0)

    def pop(self):
        pass


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


def pagelocked_empty(shape, dtype):
    return np.empty(shape, dtype)


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
