"""Backends behind one small interface: ``activate()``, ``infer({name: array}) -> {name: array}``,
``deactivate()``; usable as a context manager. Imports are lazy, so that ``import edgeexport.device.runners``
works on a host without TensorRT and on a Jetson without onnxruntime. Device-side (Python 3.6)."""
import importlib

from ..errors import UsageError
from .base import Runner

# backend name -> (module, relative to this package, and class): imported only when that backend is asked for.
# The TensorRT runner lives with the rest of what talks to TensorRT (edgeexport.device.tensorrt); naming it here
# rather than importing it keeps the checks (parity, evaluate) on this interface alone.
BACKENDS = {"onnxruntime": (".onnxruntime", "OnnxRuntimeRunner"), "tensorrt": ("..tensorrt.runner", "TensorRTRunner")}


def get_runner(backend, path, **kwargs):
    """A runner for ``backend`` on ``path`` (the .onnx for onnxruntime, the .engine for tensorrt)."""
    if backend not in BACKENDS:
        raise UsageError("no runner for backend {!r}; available: {}".format(backend, ", ".join(sorted(BACKENDS))))
    module, cls = BACKENDS[backend]
    return getattr(importlib.import_module(module, __name__), cls)(path, **kwargs)


__all__ = ["BACKENDS", "Runner", "get_runner"]
