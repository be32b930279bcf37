"""The model's metadata: the one typed source of truth shared by training, export, configs and runners.

``ModelMeta`` travels inside model.pth (``checkpoint["meta"]``); ``BundleMeta`` is model.json in the bundle: the
model's metadata plus everything the deploy graph and nvinfer need (offsets, scale, colour order, layout, tensor
names and shapes, detection settings). Configs are rendered from a BundleMeta, never typed by hand.

model.json carries ``format_version``. A field added with a default is not a format change; a change an older
reader would misread is, and bumps it. This reader reads the formats in ``READABLE_FORMATS`` and refuses a newer
one with the version that wrote it, so the user knows what to upgrade to.
Device-side (Python 3.6, no numpy even): plain classes, no dataclasses.
"""
import json
import os

from .errors import BundleFormatError, InputFileError
from .fileio import read_json
from .postprocess import EFFICIENT_NMS_OUTPUTS, NMS_CANDIDATE_CAP

ARCHS = ("ssdlite320_mobilenet_v3_large", "ssdlite320_mobilenet_v3_small")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
COLOR_FORMATS = ("rgb", "bgr")  # index = nvinfer's model-color-format
LAYOUTS = ("boxes_scores", "top_class", "efficient_nms")
FOLDS = ("exact", "mean_into_bias")
PRECISIONS = ("fp32", "int8", "fp16")  # index = nvinfer's network-mode
PREPROCESSING = ("torchvision", "nvinfer")  # how the network was fed while training

BUNDLE_KIND = "edgeexport.bundle"  # export's --force replaces only a folder whose model.json says this
BUNDLE_FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
MODEL_JSON = "model.json"

# Deploy-graph tensor names: the I/O contract of docs/ARCHITECTURE.md. The C++ parser uses the same strings.
INPUT_NAME = "input"
OUTPUT_NAMES = {
    "boxes_scores": ("boxes", "scores"),
    "top_class": ("boxes", "top_score", "top_class"),
    "efficient_nms": EFFICIENT_NMS_OUTPUTS,
}
# The EfficientNMS_TRT node's name in the graph. onnx-tensorrt names the plugin layer after its node, unchanged
# while no other layer has that name (8.2-GA builtin_op_importers.cpp:4805 registerLayer(layer, getNodeName(node));
# ImporterContext.hpp:169-182, 275-288): the name build_engine holds in FP32 and nvinfer's layer-device-precision
# names.
NMS_NODE_NAME = "efficient_nms"


def _floats3(value, what):
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        raise ValueError("{} must be 3 numbers, got {!r}".format(what, value))
    if len(out) != 3:
        raise ValueError("{} must be 3 numbers (one per RGB channel), got {}".format(what, len(out)))
    if any(v != v or v in (float("inf"), float("-inf")) for v in out):
        raise ValueError("{} must be finite, got {}".format(what, out))
    return out


def _choice(value, choices, what):
    if value not in choices:
        raise ValueError("{} must be one of {}, got {!r}".format(what, list(choices), value))
    return value


def _unit(value, what):
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError("{} must be in [0, 1], got {}".format(what, value))
    return v


# model.json's schema: the JSON kind of each field export writes ("number": int or float, finite, never a bool;
# "int": an integer, never a bool; [kind]: a list of them; {name: ...}: an object). A field may be absent where the
# reader has a default; a field present must be of its kind, so that "13" is not taken for 13, nor NaN for an offset.
_NUMBER, _INT, _STR, _BOOL, _OBJECT = "number", "int", "str", "bool", "object"
SCHEMA = {
    "kind": _STR, "format_version": _INT, "written_by": _STR, "weights_sha256": _STR, "extra": _OBJECT,
    "files": _OBJECT, "validation": _OBJECT, "manifest": [_STR],
    "model": {"arch": _STR, "labels": [_STR], "image_mean": [_NUMBER], "image_std": [_NUMBER], "input_size": [_INT],
              "reduced_tail": _BOOL, "provenance": _OBJECT, "preprocessing": _STR},
    "deploy": {"color_format": _STR, "fold": _STR, "layout": _STR, "opset": _INT, "batch_size": _INT,
               "dynamic_batch": _BOOL, "num_anchors": _INT, "onnx_file": _STR, "onnx_sha256": _STR,
               "onnx_fp16_file": _STR, "onnx_fp16_sha256": _STR, "onnx_int8_file": _STR, "onnx_int8_sha256": _STR,
               "int8": _OBJECT, "precision": _STR, "max_output_boxes": _INT,
               "max_detections": _INT, "offsets": [_NUMBER], "net_scale_factor": _NUMBER, "box_format": _STR,
               "settings": {"pre_cluster_threshold": _NUMBER, "nms_iou_threshold": _NUMBER, "topk": _INT,
                            "post_cluster_threshold": _NUMBER},
               "input": {"name": _STR, "shape": [_INT], "dtype": _STR}, "outputs": [_OBJECT]},
}


def is_finite_number(value):
    """A JSON number that is finite: int or float, never a bool (True is an int to Python), NaN or infinity."""
    import math
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _kind_ok(value, kind):
    if kind == _NUMBER:
        return is_finite_number(value)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {_STR: str, _BOOL: bool, _OBJECT: dict}[kind])


def check_schema(d, schema=SCHEMA, where=""):
    """ValueError naming the first field of ``d`` that is not of the kind ``schema`` gives it (absent is fine)."""
    names = {_NUMBER: "a finite number", _INT: "an integer", _STR: "a string", _BOOL: "true or false",
             _OBJECT: "an object"}
    plural = {_NUMBER: "finite numbers", _INT: "integers", _STR: "strings", _BOOL: "booleans", _OBJECT: "objects"}
    for key, kind in schema.items():
        if key not in d or (d[key] is None and key in ("validation", "extra", "files", "provenance", "int8")):
            continue
        value, path = d[key], where + key
        if isinstance(kind, dict):
            if not isinstance(value, dict):
                raise ValueError("{}: expected an object, found {!r}".format(path, value))
            check_schema(value, kind, path + ".")
        elif isinstance(kind, list):
            if not isinstance(value, list) or not all(_kind_ok(v, kind[0]) for v in value):
                raise ValueError("{}: expected a list of {}, found {!r}".format(path, plural[kind[0]], value))
        elif not _kind_ok(value, kind):
            raise ValueError("{}: expected {}, found {!r}".format(path, names[kind], value))


def _check_derived(meta, dep):
    """The derived values model.json writes out must be the ones its own fields give: an edit shows."""
    got = {"offsets": dep.get("offsets"), "net_scale_factor": dep.get("net_scale_factor"),
           "input.shape": (dep.get("input") or {}).get("shape")}
    want = {"offsets": meta.offsets, "net_scale_factor": meta.net_scale_factor, "input.shape": meta.input_shape}
    for key, value in got.items():
        if value is None:
            continue
        w = want[key] if isinstance(want[key], list) else [want[key]]
        v = value if isinstance(value, list) else [value]
        if len(v) != len(w) or any(abs(float(a) - float(b)) > 1e-6 * max(1.0, abs(float(b))) for a, b in zip(v, w)):
            raise ValueError("deploy.{} is {} but the model's own fields give {}: the file was edited".format(
                key, value, want[key]))


def _file_record(files):
    """{relative path: sha256 hex}; a path that leaves the bundle (absolute, '..') is not a bundle's file."""
    if files is None:
        return {}
    if not isinstance(files, dict):
        raise ValueError("files must map paths to sha256, got {}".format(type(files).__name__))
    out = {}
    for name, digest in files.items():
        parts = str(name).replace("\\", "/").split("/")
        if not isinstance(name, str) or os.path.isabs(name) or not name or any(p in ("", ".", "..") for p in parts):
            raise ValueError("files: {!r} is not a path inside the bundle".format(name))
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("files: the sha256 of {} must be 64 hex digits, got {!r}".format(name, digest))
        out[name] = digest
    return out


class ModelMeta(object):
    """What model.pth says about its network: architecture, classes, normalisation, input size, and how it was
    fed while training (``preprocessing``: torchvision's float resize, or nvinfer's 8-bit stretch)."""

    def __init__(self, arch, labels, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD, input_size=(320, 320),
                 reduced_tail=True, provenance=None, preprocessing="torchvision"):
        self.arch = _choice(arch, ARCHS, "arch")
        if isinstance(labels, str) or labels is None:
            raise ValueError("labels must be a list of class names, got {!r}".format(labels))
        labels = [str(l) for l in labels]
        if not labels:
            raise ValueError("labels must name at least one foreground class, got none")
        if len(set(labels)) != len(labels):
            raise ValueError("labels must be unique, got duplicates in {}".format(labels))
        if any(not l.strip() or l != l.strip() or "\n" in l or ";" in l for l in labels):
            # labels.txt is one label per line and nvinfer also splits on ';'.
            raise ValueError("labels must be non-empty, without surrounding spaces, newline or ';', got {!r}".format(
                labels))
        self.labels = labels
        self.image_mean = _floats3(image_mean, "image_mean")
        self.image_std = _floats3(image_std, "image_std")
        if any(s <= 0 for s in self.image_std):
            raise ValueError("image_std must be > 0, got {}".format(self.image_std))
        size = [int(v) for v in input_size]
        if len(size) != 2 or min(size) < 32:
            raise ValueError("input_size must be [H, W] with both >= 32, got {!r}".format(input_size))
        self.input_size = size
        self.reduced_tail = bool(reduced_tail)
        self.provenance = dict(provenance or {})
        self.preprocessing = _choice(preprocessing, PREPROCESSING, "preprocessing")

    @property
    def num_classes(self):
        """K, the number of foreground classes (the torchvision model has K + 1 with background 0)."""
        return len(self.labels)

    def to_dict(self):
        return {"arch": self.arch, "labels": list(self.labels), "image_mean": list(self.image_mean),
                "image_std": list(self.image_std), "input_size": list(self.input_size),
                "reduced_tail": self.reduced_tail, "provenance": dict(self.provenance),
                "preprocessing": self.preprocessing}

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict):
            raise ValueError("model metadata must be a dict, got {}".format(type(d).__name__))
        missing = [k for k in ("arch", "labels", "image_mean", "image_std", "input_size") if k not in d]
        if missing:
            raise ValueError("model metadata lacks {}".format(", ".join(missing)))
        # field by field, as model.json's "model" object (a checkpoint's meta may hold tuples where JSON has lists)
        check_schema({k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}, SCHEMA["model"], "meta.")
        return cls(d["arch"], d["labels"], d["image_mean"], d["image_std"], d["input_size"],
                   d.get("reduced_tail", True), d.get("provenance"), d.get("preprocessing", "torchvision"))

    def __eq__(self, other):
        return isinstance(other, ModelMeta) and self.to_dict() == other.to_dict()

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "ModelMeta({})".format(self.to_dict())


class DetectionSettings(object):
    """What turns candidates into detections, the same in nvinfer's ``[class-attrs-all]``, the EfficientNMS_TRT
    node and every host emulation: pre-cluster threshold, NMS IoU (torchvision SSDLite's own 0.55), topk, and
    post-cluster threshold.

    ``topk`` must be >= 1: nvinfer refuses a negative topk (the whole config fails to load) and keeps nothing with
    topk=0 (gstnvinfer_property_parser.cpp: "topk", and nvdsinfer_context_impl_output_parsing.cpp's top-k cut).
    """

    def __init__(self, pre_cluster_threshold=0.4, nms_iou_threshold=0.55, topk=100, post_cluster_threshold=0.0):
        self.pre_cluster_threshold = _unit(pre_cluster_threshold, "pre_cluster_threshold")
        self.nms_iou_threshold = _unit(nms_iou_threshold, "nms_iou_threshold")
        self.post_cluster_threshold = _unit(post_cluster_threshold, "post_cluster_threshold")
        if int(topk) != topk or int(topk) < 1:
            raise ValueError("topk must be an integer >= 1, got {!r}".format(topk))
        self.topk = int(topk)

    def to_dict(self):
        return {"pre_cluster_threshold": self.pre_cluster_threshold, "nms_iou_threshold": self.nms_iou_threshold,
                "topk": self.topk, "post_cluster_threshold": self.post_cluster_threshold}

    @classmethod
    def from_dict(cls, d):
        keys = ("pre_cluster_threshold", "nms_iou_threshold", "topk", "post_cluster_threshold")
        return cls(**{k: v for k, v in (d or {}).items() if k in keys})

    def __eq__(self, other):
        return isinstance(other, DetectionSettings) and self.to_dict() == other.to_dict()

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "DetectionSettings({})".format(self.to_dict())


def _file_in_bundle(name, field):
    """``name`` as a file name inside the bundle (no folder part, not "", "." or ".."), or ValueError."""
    name = str(name)
    if os.path.basename(name) != name or name in ("", ".", ".."):
        raise ValueError("{} must be a file name inside the bundle, got {!r}".format(field, name))
    return name


class BundleMeta(object):
    """model.json: the model's metadata plus the deploy contract (what the ONNX, configs and parser agree on)."""

    def __init__(self, model, color_format="rgb", fold="exact", layout="boxes_scores", opset=13, batch_size=1,
                 dynamic_batch=False, num_anchors=0, onnx_file="model.onnx", onnx_sha256="", precision="fp16",
                 settings=None, written_by="", extra=None, onnx_fp16_file="", onnx_fp16_sha256="",
                 max_output_boxes=None, validation=None, files=None, weights_sha256="", manifest=None,
                 onnx_int8_file="", onnx_int8_sha256="", int8=None):
        if not isinstance(model, ModelMeta):
            raise TypeError("model must be a ModelMeta, got {}".format(type(model).__name__))
        self.model = model
        self.color_format = _choice(color_format, COLOR_FORMATS, "color_format")
        self.fold = _choice(fold, FOLDS, "fold")
        self.layout = _choice(layout, LAYOUTS, "layout")
        self.opset = int(opset)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1, got {}".format(batch_size))
        self.dynamic_batch = bool(dynamic_batch)
        self.num_anchors = int(num_anchors)
        self.onnx_file = _file_in_bundle(onnx_file, "onnx_file")
        self.onnx_sha256 = str(onnx_sha256)
        # The FP16 graph (fp32 inputs and outputs) that strongly typed TensorRT (11.x) builds an FP16 engine from.
        self.onnx_fp16_file, self.onnx_fp16_sha256 = str(onnx_fp16_file), str(onnx_fp16_sha256)
        # The explicitly quantized graph (Q/DQ nodes: export --precision int8 --calib-data) an INT8 engine is built
        # from on every TensorRT, and how it was calibrated (``int8``: method, images, what stayed float).
        self.onnx_int8_file = _file_in_bundle(onnx_int8_file, "onnx_int8_file") if onnx_int8_file else ""
        self.onnx_int8_sha256 = str(onnx_int8_sha256)
        self.int8 = dict(int8) if int8 else None
        self.precision = _choice(precision, PRECISIONS, "precision")
        self.settings = settings if settings is not None else DetectionSettings()
        if not isinstance(self.settings, DetectionSettings):
            raise TypeError("settings must be DetectionSettings, got {}".format(type(self.settings).__name__))
        self.written_by = str(written_by)
        self.extra = dict(extra or {})
        # export --val-data: the set (in the bundle's validation/) and the mAP of each row on it
        self.validation = dict(validation) if validation else None
        # EfficientNMS_TRT keeps max_output_boxes per image, across classes; nvinfer's topk is per class and it
        # applies it in cluster-mode 4 as well (nvdsinfer_context_impl_output_parsing.cpp:451-461 @6.0.1). Any
        # per-image cut would drop a class's boxes that nvinfer's per-class topk keeps, so the plugin keeps as many
        # rows as it can select at all (its candidate cap, or every anchor x class when fewer): nvinfer's topk
        # decides, and both layouts keep the same boxes for the same --topk.
        if max_output_boxes is None:
            every = self.num_anchors * self.model.num_classes
            max_output_boxes = min(every, NMS_CANDIDATE_CAP) if every else self.settings.topk
        self.max_output_boxes = int(max_output_boxes)
        # {path inside the bundle: sha256} of every file export wrote that no command rewrites (deepstream.bundle_check)
        self.files = _file_record(files)
        # the digest of the checkpoint's weights export read (model.checkpoint.weights_sha256): evaluate's pytorch
        # row must score this very model
        self.weights_sha256 = str(weights_sha256 or "")
        # every file export wrote (export --force replaces those and the device side's, and keeps the user's)
        self.manifest = [str(m) for m in (manifest or [])]

    def graph_sha256(self, onnx_file):
        """The sha256 export recorded for one of the bundle's graphs (model.onnx, its FP16 twin, its Q/DQ graph), or
        None."""
        return {self.onnx_file: self.onnx_sha256, self.onnx_fp16_file: self.onnx_fp16_sha256,
                self.onnx_int8_file: self.onnx_int8_sha256}.get(onnx_file) if onnx_file else None

    @property
    def graph_files(self):
        """The bundle's graphs, model.onnx first."""
        return [f for f in (self.onnx_file, self.onnx_fp16_file, self.onnx_int8_file) if f]

    def graph_for(self, precision):
        """The graph an engine of ``precision`` is built from where the builder's flags choose the precision
        (TensorRT 8.x-10.x; build_engine adds 11.x's FP16 twin): INT8 from the Q/DQ twin when the bundle has one,
        else model.onnx."""
        return self.onnx_int8_file if precision == "int8" and self.onnx_int8_file else self.onnx_file

    # --- values nvinfer needs, all derived -------------------------------------------------------------
    @property
    def max_detections(self):
        """Rows of the EfficientNMS_TRT outputs (its ``max_output_boxes``)."""
        return self.max_output_boxes

    @property
    def channel_order(self):
        """Indices into RGB giving the graph's channel order."""
        return [0, 1, 2] if self.color_format == "rgb" else [2, 1, 0]

    @property
    def offsets(self):
        """nvinfer ``offsets``: 255 * mean, in the graph's colour order (subtracted before any scaling).

        Zero for the mean_into_bias fold, whose graph takes raw pixels."""
        if self.fold == "mean_into_bias":
            return [0.0, 0.0, 0.0]
        return [255.0 * self.model.image_mean[c] for c in self.channel_order]

    @property
    def net_scale_factor(self):
        """1.0 for both folds: the per-channel 1/(255*std) lives in the first convolution."""
        return 1.0

    @property
    def input_name(self):
        return INPUT_NAME

    @property
    def output_names(self):
        return list(OUTPUT_NAMES[self.layout])

    @property
    def input_shape(self):
        """[B, 3, H, W]; B is -1 for a dynamic batch."""
        h, w = self.model.input_size
        return [-1 if self.dynamic_batch else self.batch_size, 3, h, w]

    def output_shapes(self):
        """Per-output shape including the batch dim (-1 when dynamic)."""
        b = -1 if self.dynamic_batch else self.batch_size
        n, k, m = self.num_anchors, self.model.num_classes, self.max_detections
        return {
            "boxes_scores": {"boxes": [b, n, 4], "scores": [b, n, k]},
            "top_class": {"boxes": [b, n, 4], "top_score": [b, n], "top_class": [b, n]},
            "efficient_nms": {"num_detections": [b, 1], "detection_boxes": [b, m, 4],
                              "detection_scores": [b, m], "detection_classes": [b, m]},
        }[self.layout]

    def to_dict(self):
        return {
            "kind": BUNDLE_KIND,
            "format_version": BUNDLE_FORMAT_VERSION,
            "written_by": self.written_by,
            "model": self.model.to_dict(),
            "deploy": {
                "color_format": self.color_format, "fold": self.fold, "layout": self.layout, "opset": self.opset,
                "batch_size": self.batch_size, "dynamic_batch": self.dynamic_batch,
                "num_anchors": self.num_anchors, "onnx_file": self.onnx_file, "onnx_sha256": self.onnx_sha256,
                "onnx_fp16_file": self.onnx_fp16_file, "onnx_fp16_sha256": self.onnx_fp16_sha256,
                "onnx_int8_file": self.onnx_int8_file, "onnx_int8_sha256": self.onnx_int8_sha256, "int8": self.int8,
                "precision": self.precision, "settings": self.settings.to_dict(),
                "max_output_boxes": self.max_output_boxes,
                # Derived, written out so a reader without this module sees the whole contract.
                "offsets": self.offsets, "net_scale_factor": self.net_scale_factor,
                "input": {"name": self.input_name, "shape": self.input_shape, "dtype": "float32"},
                "outputs": [{"name": k, "shape": v} for k, v in sorted(self.output_shapes().items())],
                "box_format": "x1y1x2y2, normalised to [0, 1] of the network input",
            },
            "extra": self.extra,
            "validation": self.validation,
            "files": dict(self.files),
            "weights_sha256": self.weights_sha256,
            "manifest": list(self.manifest),
        }

    @classmethod
    def from_dict(cls, d, where=MODEL_JSON):
        """Read format 2, and format 1 (settings then lived in ``extra``); refuse a newer format by name."""
        if not isinstance(d, dict):
            raise InputFileError("{} holds a {}, expected a JSON object written by export".format(
                where, type(d).__name__))
        version = d.get("format_version")
        if isinstance(version, int) and version > BUNDLE_FORMAT_VERSION:
            raise BundleFormatError(
                "{} is bundle format {}, written by edgeexport {}; this edgeexport reads formats {}: upgrade it to "
                "that version or newer (pip install 'edgeexport>={}'), or re-export with this one".format(
                    where, version, d.get("written_by") or "(newer)", "-".join(str(v) for v in (
                        READABLE_FORMATS[0], READABLE_FORMATS[-1])), d.get("written_by") or "the writer's version"))
        try:
            if version not in READABLE_FORMATS:
                raise ValueError("format_version {} expected, got {!r}".format(
                    " or ".join(str(v) for v in READABLE_FORMATS), version))
            check_schema(d)
            dep = d["deploy"]
            settings = dep["settings"] if version >= 2 else (d.get("extra") or {}).get("settings")
            meta = cls(ModelMeta.from_dict(d["model"]), dep["color_format"], dep["fold"], dep["layout"],
                       dep["opset"], dep["batch_size"], dep["dynamic_batch"], dep["num_anchors"], dep["onnx_file"],
                       dep["onnx_sha256"], dep.get("precision", "fp16"), DetectionSettings.from_dict(settings),
                       d.get("written_by", ""), d.get("extra"), dep.get("onnx_fp16_file", ""),
                       dep.get("onnx_fp16_sha256", ""),
                       # earlier bundles: the plugin kept topk rows (format 1 named them max_detections)
                       dep.get("max_output_boxes", dep.get("max_detections", DetectionSettings.from_dict(
                           settings).topk)), d.get("validation"), d.get("files"), d.get("weights_sha256", ""),
                       d.get("manifest"), dep.get("onnx_int8_file", ""), dep.get("onnx_int8_sha256", ""),
                       dep.get("int8"))
            _check_derived(meta, dep)
            return meta
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise InputFileError("{} is not an edgeexport bundle description ({}: {}); re-export the bundle with "
                                 "export.py".format(where, type(e).__name__, e))

    def save(self, path):
        from .fileio import atomic_write_text
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path):
        """model.json at ``path``, or in the folder ``path``."""
        if os.path.isdir(path):
            path = os.path.join(path, MODEL_JSON)
        elif not os.path.exists(path):
            raise InputFileError("no bundle at {}: expected a folder holding the {} that export.py writes".format(
                path, MODEL_JSON))
        return cls.from_dict(read_json(path, "; pass a bundle folder written by export.py"), path)


def is_bundle_folder(folder):
    """True for a folder holding a model.json that export wrote (any format, newer ones included)."""
    path = os.path.join(folder, MODEL_JSON)
    try:
        with open(path) as f:
            d = json.load(f)
    except Exception:  # anything that is not readable JSON is "not a bundle", by design
        return False
    if not isinstance(d, dict):
        return False
    if d.get("kind") == BUNDLE_KIND:
        return True
    return d.get("format_version") == 1 and isinstance(d.get("deploy"), dict) and isinstance(d.get("model"), dict)
