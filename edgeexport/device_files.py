"""The device-side part of edgeexport: what the bundle carries to the Jetson, and what must run under
Python 3.6 with numpy, tensorrt and pycuda only (checked by tests/test_device_side.py)."""

DEVICE_MODULES = (
    "__init__.py", "errors.py", "meta.py", "naming.py", "fileio.py", "cli.py", "compare.py", "postprocess.py",
    "preprocess.py", "keyfile.py", "configs.py", "trt_onnx_ops.py", "parity.py", "build_engine.py", "trt_api.py",
    "calibrator.py", "cuda_mem.py", "device_files.py", "runners/__init__.py", "runners/base.py",
    "runners/tensorrt_runner.py", "runners/onnxrt.py",
)
