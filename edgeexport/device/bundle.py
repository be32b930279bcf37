"""A bundle folder as an object: ``load_bundle(path)`` -> ``Bundle`` (metadata, labels, configs, fixtures, the
engine nvinfer looks for), and the names of the files in it. Device-side (Python 3.6); the host's export writes
what this reads.
"""
import hashlib
import os
import re

import numpy as np

from .errors import InputFileError, UsageError
from .fileio import read_json
from .meta import MODEL_JSON, PRECISIONS, BundleMeta
from .naming import engine_file_name, read_nvinfer_labels

INFER_CONFIG = "infer_config.txt"
LABELS = "labels.txt"
EXPORT_REPORT = "parity/report.json"
# what export writes at the top of every bundle besides its graphs (own_files; export --force's clash check)
TOP_LEVEL_FILES = (MODEL_JSON, INFER_CONFIG, LABELS, "app_config.txt", "app_config_fps.txt", "README.md")

FIXTURE_INPUTS = "parity/inputs.npy"
FIXTURE_EXPECTED = "parity/expected.npz"
# ONNX Runtime's outputs of the Q/DQ twin (INT8 kernels) on the same inputs: what an engine built from it is held to
FIXTURE_EXPECTED_INT8 = "parity/expected_int8.npz"
# The graph up to the EfficientNMS_TRT node, which only TensorRT runs: what ONNX Runtime checks on an
# efficient_nms bundle, with the plugin's NumPy reference after it (export writes it; no onnx needed to use it).
GRAPH_BEFORE_NMS = "parity/graph_before_nms.onnx"
GRAPH_INT8_BEFORE_NMS = "parity/graph_int8_before_nms.onnx"  # the Q/DQ twin up to the plugin node


class Fixtures(object):
    """The bundle's parity fixtures: graph inputs, the original model's outputs for them, and the score threshold
    at which export found detections to compare (the bundle's pre-cluster threshold, or lower where the model
    finds nothing that confident on the fixture images)."""

    def __init__(self, inputs, expected, threshold):
        self.inputs, self.expected, self.threshold = inputs, expected, threshold

    @classmethod
    def load(cls, bundle, expected=FIXTURE_EXPECTED):
        inputs_path, expected_path = os.path.join(bundle, FIXTURE_INPUTS), os.path.join(bundle, expected)
        try:
            inputs = np.load(inputs_path)
            with np.load(expected_path) as z:
                expected = {k: z[k] for k in z.files}
        except Exception as e:  # whatever is not a readable .npy/.npz is "not the fixtures", by design
            raise InputFileError("cannot read the parity fixtures {} and {}: {}; re-export the bundle".format(
                inputs_path, expected_path, str(e).splitlines()[0] if str(e) else type(e).__name__))
        threshold = expected.pop("detection_threshold", None)
        if inputs.ndim != 4 or "boxes" not in expected or "scores" not in expected or \
                len(expected["boxes"]) != len(inputs) or len(expected["scores"]) != len(inputs):
            raise InputFileError("the parity fixtures in {} disagree with each other (inputs {}, expected {}); "
                                 "re-export the bundle".format(os.path.join(bundle, "parity"), inputs.shape,
                                                               {k: v.shape for k, v in expected.items()}))
        return cls(inputs, expected, None if threshold is None else float(threshold))


class Bundle(object):
    """The folder export wrote: ``meta`` (BundleMeta) plus paths, read lazily."""

    def __init__(self, path):
        if not os.path.isdir(path):
            raise InputFileError("no bundle at {}: expected a folder holding the model.json that export.py "
                                 "writes".format(path))
        self.path = os.path.abspath(path)
        self.meta = BundleMeta.load(os.path.join(self.path, MODEL_JSON))
        self._fixtures = None
        self.checked = None  # the BundleCheck, once load_bundle checked it whole

    def file(self, name):
        return os.path.join(self.path, name)

    @property
    def onnx_path(self):
        return self.file(self.meta.onnx_file)

    @property
    def infer_config_path(self):
        return self.file(INFER_CONFIG)

    @property
    def labels(self):
        """labels.txt, checked against model.json (nvinfer reads the file, export wrote both)."""
        try:
            labels = read_nvinfer_labels(self.file(LABELS))
        except (IOError, OSError) as e:
            raise InputFileError("cannot read {}: {}; re-export the bundle".format(self.file(LABELS), e.strerror))
        if labels != self.meta.model.labels:
            raise InputFileError("{} lists {} but model.json says {}: the bundle was edited; re-export it".format(
                self.file(LABELS), labels, self.meta.model.labels))
        return labels

    def read_config(self, name=INFER_CONFIG):
        """A config of the bundle as {group: {key: value}}, read by GLib's GKeyFile as DeepStream reads it."""
        from .keyfile import KeyFile
        return KeyFile(self.file(name)).to_dict()

    @property
    def fixtures(self):
        if self._fixtures is None:
            self._fixtures = Fixtures.load(self.path)
        return self._fixtures

    def host_graph(self, int8=False):
        """The graph ONNX Runtime runs for this bundle: model.onnx, or with ``int8`` its Q/DQ twin; on an
        efficient_nms bundle the same graph up to the EfficientNMS_TRT node, which only TensorRT runs."""
        nms = self.meta.layout == "efficient_nms"
        if int8:
            self._need_qdq()
            return self.file(GRAPH_INT8_BEFORE_NMS if nms else self.meta.onnx_int8_file)
        return self.file(GRAPH_BEFORE_NMS) if nms else self.onnx_path

    def _need_qdq(self):
        if not self.meta.onnx_int8_file:
            raise UsageError("{} has no Q/DQ graph: export with --precision int8 --calib-data KIND:PATH (or from a "
                             "train --qat checkpoint) writes one".format(self.path))

    @property
    def int8_fixtures(self):
        """The fixture inputs with ONNX Runtime's INT8 outputs of the bundle's Q/DQ twin."""
        self._need_qdq()
        if not os.path.isfile(os.path.join(self.path, FIXTURE_EXPECTED_INT8)):
            raise InputFileError("{} has a Q/DQ graph but no {} (exported before it was written): re-export the "
                                 "bundle".format(self.path, FIXTURE_EXPECTED_INT8))
        return Fixtures.load(self.path, FIXTURE_EXPECTED_INT8)

    @property
    def export_report(self):
        """parity/report.json as export wrote it (a dict), or None."""
        try:
            return read_json(self.file(EXPORT_REPORT))
        except InputFileError:  # missing or not JSON: no report to show
            return None

    def _configured(self, key):
        """The last value of ``key`` in infer_config.txt (build_engine rewrites it to what it built), or None."""
        try:
            with open(self.infer_config_path) as f:
                values = re.findall(r"^{}=(.+)$".format(re.escape(key)), f.read(), re.M)
        except (IOError, OSError):
            values = []
        return values[-1].strip() if values else None

    def configured_engine_path(self):
        """The engine infer_config.txt names, else the bundle's default name."""
        name = self._configured("model-engine-file")
        return self.file(name) if name else self.engine_path()

    def configured_precision(self):
        """The precision infer_config.txt's network-mode names, else the bundle's."""
        mode = self._configured("network-mode")
        if mode is not None and mode.isdigit() and int(mode) < len(PRECISIONS):
            return PRECISIONS[int(mode)]
        return self.meta.precision

    def own_files(self):
        """The files export wrote (and build_engine writes) that no command's output may replace: the outputs'
        ``inputs`` in fileio.check_output_file."""
        names = list(TOP_LEVEL_FILES) + self.meta.graph_files + sorted(self.meta.files)
        paths = [self.file(n) for n in names if n]
        paths += [self.configured_engine_path(), self.engine_path()]
        return [p for p in paths if os.path.exists(p)]

    def engine_path(self, precision=None, batch_size=None, gpu_id=0, dla_core=None):
        """Where nvinfer (and build_engine) put the engine for these settings (default: the bundle's)."""
        return self.file(engine_file_name(self.meta.onnx_file, batch_size or self.meta.batch_size,
                                          precision or self.meta.precision, gpu_id, dla_core))

    def __repr__(self):
        m = self.meta
        return "Bundle({!r}: {} {} classes, {} layout, batch {})".format(
            self.path, m.model.arch, m.model.num_classes, m.layout, m.batch_size)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
