"""``import pycuda.autoinit``: a context on device 0. EDGEEXPORT_FAKE_CUDA_FAILS=1 makes it fail as pycuda does on a
machine without a usable GPU (cuInit raises pycuda's RuntimeError)."""
import os

import pycuda.driver as cuda

if os.environ.get("EDGEEXPORT_FAKE_CUDA_FAILS"):
    raise cuda.RuntimeError("cuInit failed: no CUDA-capable device is detected")
cuda.init()
context = cuda.Device(0).make_context()
