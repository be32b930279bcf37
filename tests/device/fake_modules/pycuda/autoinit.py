"""``import pycuda.autoinit``: a context on device 0 (pycuda/autoinit.py at v2022.1: init, then a context on the
first device that works), failing as pycuda does on a machine without a usable GPU (EDGEEXPORT_FAKE_CUDA_FAILS)."""
import pycuda.driver as cuda

cuda.init()
context = cuda.Device(0).make_context()
