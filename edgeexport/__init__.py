"""edgeexport: from a torchvision SSDLite detector to a DeepStream pipeline on a Jetson, with proof of parity.

Importing the package imports nothing heavy: torch, onnx and tensorrt are imported by the modules that need
them, so ``import edgeexport`` works on a CPU-only host and on a Jetson without torch (Python 3.6).
"""
from .errors import EdgeExportError

__version__ = "0.1.0"
__all__ = ["EdgeExportError", "__version__"]
