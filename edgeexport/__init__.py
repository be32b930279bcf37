"""edgeexport: from a torchvision SSDLite detector to a DeepStream pipeline on a Jetson, with proof of parity.

The Python API (the command lines are front ends to it)::

    import edgeexport
    result = edgeexport.export_bundle(model, "bundle", labels=["cat", "dog"])    # host: torch, onnx
    bundle = edgeexport.load_bundle("bundle")                                   # host or Jetson
    with edgeexport.get_runner("onnxruntime", bundle.onnx_path) as runner:      # "tensorrt" on the Jetson
        report = edgeexport.check_bundle(bundle, runner)                        # vs the original model's outputs
    print(report.table())
    evaluation = edgeexport.evaluate_bundle(bundle, ["pytorch", "onnxruntime", "nvinfer"], model=model,
                                            dataset="synthetic")                # mAP backend by backend
    print(evaluation.table())

Layout: ``edgeexport.device`` is what runs on the Jetson (Python 3.6, numpy, TensorRT; the bundle ships it as
is, with this file and the other top-level modules, which import only the device side). The host stages sit
beside it: ``data``, ``model``, ``train``, ``export``, ``emulate``. Their API names below are imported on first
use, so ``import edgeexport`` needs neither torch nor onnx.
"""
__version__ = "0.2.0"

from .device.bundle import Bundle
from .device.deepstream.bundle_check import load_bundle
from .device.check.compare import ParityReport, compare_outputs
from .device.check.evaluate import Evaluation, evaluate_bundle
from .device.check.parity import check_bundle, run_backend
from .device.errors import (BackendUnavailableError, BundleFormatError, BundleMismatchError, CheckpointError,
                            ConfigError, DatasetError, EdgeExportError, EngineBuildError, ExportError, InferenceError, InputFileError,
                            ModelStructureError, OutputExistsError, ParityError, TrainingError,
                            UnsupportedPrecisionError, UsageError)
from .device.meta import BundleMeta, DetectionSettings, ModelMeta
from .device.runners import Runner, get_runner

# host-side names -> the module that defines them (PEP 562: imported when first used; Python >= 3.7)
_HOST_API = {
    "export_bundle": "edgeexport.export.pipeline", "ExportResult": "edgeexport.export.pipeline",
    "build_ssdlite": "edgeexport.model", "describe_model": "edgeexport.model", "load_model": "edgeexport.model",
    "save_checkpoint": "edgeexport.model", "TorchRunner": "edgeexport.export.torch_runner",
}

__all__ = ["__version__", "Bundle", "load_bundle", "ParityReport", "check_bundle", "compare_outputs", "run_backend",
           "Runner", "Evaluation", "evaluate_bundle",
           "get_runner", "BundleMeta", "DetectionSettings", "ModelMeta", "EdgeExportError", "BackendUnavailableError",
           "BundleFormatError", "BundleMismatchError", "CheckpointError", "ConfigError", "DatasetError",
           "EngineBuildError", "ExportError", "InferenceError", "InputFileError", "ModelStructureError", "OutputExistsError", "ParityError",
           "TrainingError", "UnsupportedPrecisionError", "UsageError",
           # host side, imported on first use
           "export_bundle", "ExportResult", "build_ssdlite", "describe_model", "load_model", "save_checkpoint",
           "TorchRunner"]


def __getattr__(name):
    if name in _HOST_API:
        import importlib
        return getattr(importlib.import_module(_HOST_API[name]), name)
    raise AttributeError("module 'edgeexport' has no attribute {!r}".format(name))


def __dir__():
    return __all__
