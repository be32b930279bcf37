"""Backends behind one small interface: ``activate()``, ``infer({name: array}) -> {name: array}``,
``deactivate()``; usable as a context manager. Imports are lazy so that ``import edgeexport.runners`` works on a
CPU-only host without torch and on a Jetson without onnxruntime. Device-side (Python 3.6)."""
from .base import Runner


def get_runner(backend, path, **kwargs):
    """``backend``: onnxruntime | tensorrt | torch. ``path``: the .onnx, the .engine, or (torch) a model.pth."""
    if backend == "onnxruntime":
        from .onnxrt import OnnxRuntimeRunner
        return OnnxRuntimeRunner(path, **kwargs)
    if backend == "tensorrt":
        from .tensorrt_runner import TensorRTRunner
        return TensorRTRunner(path, **kwargs)
    if backend == "torch":
        from .torch_runner import TorchRunner
        return TorchRunner.from_checkpoint(path, **kwargs)
    raise ValueError("backend must be onnxruntime, tensorrt or torch, got {!r}".format(backend))
