"""The GPU a fresh test process pretends to have, shared by the fake ``tensorrt`` and ``pycuda`` packages beside
this file: its memory (a FakeCuda of tests/device/tensorrt/trt_double.py) and its kind (EDGEEXPORT_FAKE_GPU: nano, orin,
desktop). Loaded by file path, so that the process needs nothing of the development checkout but this folder."""
import importlib.util
import os

_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tensorrt", "trt_double.py")
_spec = importlib.util.spec_from_file_location("_edgeexport_trt_double", _path)
double = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(double)

GPU = os.environ.get("EDGEEXPORT_FAKE_GPU", "desktop")
MEMORY = double.FakeCuda(GPU)
