"""A fake ``tensorrt`` for fresh test processes: the double of tests/device/tensorrt/trt_double.py, generation from
EDGEEXPORT_TRT_DOUBLE (8.2, 8.6, 10, 11), on the fake GPU of _edgeexport_fake_gpu."""
import os as _os

import _edgeexport_fake_gpu as _gpu

globals().update({k: v for k, v in vars(_gpu.double.make_tensorrt(
    _os.environ.get("EDGEEXPORT_TRT_DOUBLE", "10"), _gpu.GPU, cuda=_gpu.MEMORY)).items()
    if not k.startswith("__") or k == "__version__"})
