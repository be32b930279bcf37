"""A bundle folder as an object: ``load_bundle(path)`` -> ``Bundle`` (metadata, labels, configs, fixtures, the
engine nvinfer looks for). Device-side (Python 3.6); the host's export writes what this reads.
"""
import hashlib
import os

from .errors import InputFileError
from .fileio import read_json
from .meta import MODEL_JSON, BundleMeta
from .naming import engine_file_name

INFER_CONFIG = "infer_config.txt"
LABELS = "labels.txt"
EXPORT_REPORT = "parity/report.json"


class Bundle(object):
    """The folder export wrote: ``meta`` (BundleMeta) plus paths, read lazily."""

    def __init__(self, path):
        if not os.path.isdir(path):
            raise InputFileError("no bundle at {}: expected a folder holding the model.json that export.py "
                                 "writes".format(path))
        self.path = os.path.abspath(path)
        self.meta = BundleMeta.load(os.path.join(self.path, MODEL_JSON))
        self._fixtures = None

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
            with open(self.file(LABELS)) as f:
                labels = [line.strip() for line in f if line.strip()]
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
            from .parity import Fixtures
            self._fixtures = Fixtures.load(self.path)
        return self._fixtures

    @property
    def export_report(self):
        """parity/report.json as export wrote it (a dict), or None."""
        try:
            return read_json(self.file(EXPORT_REPORT))
        except InputFileError:  # missing or not JSON: no report to show
            return None

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


def check_onnx_sha256(onnx_path, meta, sha256=None):
    """model.onnx (or ``sha256``'s graph) must be the file export wrote (model.json holds its sha256): a truncated or
    edited copy would go into a long build (10+ minutes on a Nano) and give an engine of another graph."""
    want = meta.onnx_sha256 if sha256 is None else sha256
    if not os.path.isfile(onnx_path):
        raise InputFileError("{} not found: the bundle is incomplete; copy it again".format(onnx_path))
    got = file_sha256(onnx_path)
    if want and got != want:
        raise InputFileError("{} is not the ONNX that export wrote (sha256 {}..., model.json says {}...): the copy is "
                             "damaged or edited; copy the bundle again".format(onnx_path, got[:12], want[:12]))
    return got


def load_bundle(path):
    """The bundle folder at ``path`` (model.json is read and checked at once; the rest when first used)."""
    return Bundle(path)
