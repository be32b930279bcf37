"""One exception family for the whole library.

Library code raises these; only the command-line entry points turn them into a one-line message and an
exit code (see ``edgeexport.cli``). Every message says what was expected, what was got, and what to do.
This module is device-side: it must parse and run under Python 3.6.
"""


class EdgeExportError(Exception):
    """Base of every error edgeexport raises on purpose."""

    exit_code = 2


class InputFileError(EdgeExportError):
    """A file the user named is missing, unreadable or not what it claims to be."""


class BundleMismatchError(InputFileError):
    """A file of the bundle disagrees with what export recorded in model.json (another graph, edited labels, an
    infer_config.txt that would feed or read the network differently from the model)."""


class UsageError(EdgeExportError):
    """Flags that cannot work together, or a value the command cannot use (found after parsing)."""


class BundleFormatError(InputFileError):
    """model.json was written by a newer edgeexport (a newer bundle format) than this one reads."""


class CheckpointError(EdgeExportError):
    """model.pth is corrupt, foreign, carries code, or does not match its own metadata."""


class DatasetError(EdgeExportError):
    """An annotation or image of a dataset is unusable."""


class ModelStructureError(EdgeExportError):
    """The network does not have the structure an operation needs (e.g. no plain first conv to fold into)."""


class ExportError(EdgeExportError):
    """The ONNX export, the simplifier or the operator pre-flight failed."""


class ConfigError(EdgeExportError):
    """A DeepStream config file is missing a key, has a wrong value, or cannot be parsed."""


class OutputExistsError(EdgeExportError):
    """The output exists and --force was not given."""


class ParityError(EdgeExportError):
    """Two backends disagree beyond the tolerance."""

    exit_code = 1


class EngineBuildError(EdgeExportError):
    """TensorRT could not parse the ONNX or build the engine."""


class UnsupportedPrecisionError(EngineBuildError):
    """The requested precision has no fast path on this GPU (e.g. INT8 on a Jetson Nano)."""


class TrainingError(EdgeExportError):
    """Training cannot go on: the loss is no longer finite, or the GPU ran out of memory."""
    exit_code = 1


class InferenceError(EdgeExportError):
    """A runtime refused or failed an inference (a shape it does not take, execute returning false)."""


class BackendUnavailableError(EdgeExportError):
    """A runtime (TensorRT, pycuda, ONNX Runtime, torch) is not installed where it is needed."""
