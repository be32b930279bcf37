"""Names nvinfer itself derives, so that what we write is what DeepStream looks for.

Device-side (Python 3.6).
"""
import os
import re

from .meta import PRECISIONS  # index = nvinfer's network-mode (0, 1, 2)


def network_mode(precision):
    """nvinfer's ``network-mode`` integer for a precision name."""
    if precision not in PRECISIONS:
        raise ValueError("precision must be one of {}, got {!r}".format(PRECISIONS, precision))
    return PRECISIONS.index(precision)


def engine_gpu_id(engine_path):
    """The GPU an engine was named for (``_gpu<N>_`` in nvinfer's name), 0 for a DLA engine or another name: a
    DLA engine runs its GPU layers on the default GPU."""
    m = re.search(r"_gpu(\d+)_(?:fp32|int8|fp16)\.engine$", os.path.basename(str(engine_path)))
    return int(m.group(1)) if m else 0


def engine_file_name(onnx_file_name, batch_size, precision, gpu_id=0, dla_core=None):
    """The engine file name nvinfer builds and looks for beside the ONNX.

    DeepStream 6.0.1 names a built engine ``<onnx-file>_b<batch>_<gpu<id>|dla<core>>_<fp32|int8|fp16>.engine``.
    Writing exactly this name lets nvinfer find our engine and never rebuild it on start-up.
    """
    if int(batch_size) < 1:
        raise ValueError("batch_size must be >= 1, got {}".format(batch_size))
    network_mode(precision)  # validates
    device = "dla{}".format(int(dla_core)) if dla_core is not None else "gpu{}".format(int(gpu_id))
    return "{}_b{}_{}_{}.engine".format(onnx_file_name, int(batch_size), device, precision)


def read_nvinfer_labels(path):
    """labels.txt as nvinfer reads it (InferPostprocessor::parseLabelsFile, nvdsinfer_context_impl.cpp:470-500
    @6.0.1): lines split at '\\n' only, a line skipped only when it is empty (spaces and a '\\r' count), each
    split at ';', and a detector's object labelled with the first field (nvdsinfer_context_impl_output_parsing.cpp
    :291-293). A file that cannot be opened fails nvinfer's start; here an OSError for the caller to name."""
    with open(path, "rb") as f:
        data = f.read()
    return [line.split(b";")[0].decode("utf-8", "replace") for line in data.split(b"\n") if line]
