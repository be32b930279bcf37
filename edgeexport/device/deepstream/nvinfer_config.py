"""An nvinfer config file read as gst-nvinfer reads it: GLib's GKeyFile, the same types, defaults and refusals.

What this reads is what the host emulation and `parity --dump` do to frames and candidates; a value nvinfer would
refuse (and so fail to start the pipeline) is a ConfigError here too. Sources, DeepStream 6.0.1 (the same in 6.3):
sources/gst-plugins/gst-nvinfer/gstnvinfer_property_parser.cpp and .h.
Device-side (Python 3.6).
"""
import os

from ..errors import ConfigError, InputFileError
from ..keyfile import KeyFile
from ..naming import read_nvinfer_labels
from ..postprocess import CLUSTER_NMS, CLUSTER_NONE, ClassAttrs, cluster, parse_outputs, to_frame
from ..preprocess import DEFAULT_SCALING_FILTER, SCALING_FILTERS, network_input_from_8bit, scale_frame
from .infer_config import PARSER_FUNCTIONS

PROPERTY = "property"
CLASS_ATTRS = "class-attrs-"
COLOR_FORMATS = {0: "rgb", 1: "bgr"}  # model-color-format; 2 (GRAY) is not an SSDLite input
DEFAULT_EMULATED = (6, 0, 1)  # the DeepStream of JetPack 4.6, where no DeepStream is installed to ask


def read_class_attrs(kf, num_classes, path):
    """One ClassAttrs per class: defaults, then ``[class-attrs-all]``, then each ``[class-attrs-<id>]`` over it,
    whatever the order of the groups in the file (gst_nvinfer_parse_config_file, :1172-1225); a class id at or
    beyond num-detected-classes, or a group name that is not a number, fails the whole config (:1199-1214)."""
    base = ClassAttrs()
    groups = kf.groups()
    if CLASS_ATTRS + "all" in groups:
        _apply(kf, CLASS_ATTRS + "all", base, path)
    attrs = [base.copy() for _ in range(num_classes)]
    for group in groups:
        if not group.startswith(CLASS_ATTRS) or group == CLASS_ATTRS + "all":
            continue
        suffix = group[len(CLASS_ATTRS):]
        digits = len(suffix) - len(suffix.lstrip("0123456789"))
        if digits == 0:  # g_ascii_strtoull parsed nothing
            raise ConfigError("{}: invalid group [{}]: class attributes go in [class-attrs-<class id>]".format(
                path, group))
        index = int(suffix[:digits])
        if index >= num_classes:
            raise ConfigError("{}: [{}] names class {} but num-detected-classes={}".format(
                path, group, index, num_classes))
        _apply(kf, group, attrs[index], path)
    return attrs


def _apply(kf, group, attrs, path):
    """gst_nvinfer_parse_class_attrs (:81-289): each key with its type and its range check."""
    for key in kf.keys(group):
        field = ClassAttrs.KEYS.get(key)
        if field is None:
            continue  # colours, DBSCAN parameters: not part of what the emulation computes
        value = kf.integer(group, key) if key in ClassAttrs.INTEGER_KEYS else kf.double(group, key)
        if key == "nms-iou-threshold" and not 0 <= value <= 1:
            raise ConfigError("{}: [{}] nms-iou-threshold={} must lie in [0, 1] (nvinfer refuses it)".format(
                path, group, value))
        if value < 0:
            raise ConfigError("{}: [{}] {}={} is negative: nvinfer refuses it and the pipeline does not start{}".format(
                path, group, key, value, " (topk must be >= 0; 0 keeps no detection)" if key == "topk" else ""))
        setattr(attrs, field, value)


class NvInferConfig(object):
    """The parts of an nvinfer config that decide what reaches the network and what comes out of it, as the
    nvinfer of ``deepstream_version`` (a tuple; default: the DeepStream installed here, else 6.0.1, JetPack 4.6's)
    applies them where versions differ."""

    def __init__(self, path, deepstream_version=None):
        self.path, self.folder = path, os.path.dirname(os.path.abspath(path))
        if deepstream_version is None:
            from .install import detect_install
            deepstream_version = detect_install()[1] or DEFAULT_EMULATED
        self.deepstream_version = tuple(deepstream_version)
        kf = KeyFile(path)
        if PROPERTY not in kf.groups():
            raise ConfigError("{} has no [property] group (nvinfer requires it)".format(path))
        keys = set(kf.keys(PROPERTY))

        def get(key, reader, default=None):
            if key not in keys:
                if default is None:
                    raise ConfigError("{}: [property] has no {}".format(path, key))
                return default
            return reader(PROPERTY, key)

        dims = [int(v) for v in get("infer-dims", kf.string).split(";") if v.strip()]
        if len(dims) != 3 or min(dims) < 1:
            raise ConfigError("{}: infer-dims must be C;H;W, got {}".format(path, dims))
        self.net_c, self.net_h, self.net_w = dims
        self.net_scale_factor = get("net-scale-factor", kf.double, 1.0)
        self.offsets = get("offsets", kf.double_list, [0.0, 0.0, 0.0])
        color = get("model-color-format", kf.integer, 0)
        if color not in COLOR_FORMATS:
            raise ConfigError("{}: model-color-format={} is not emulated (0 = RGB, 1 = BGR)".format(path, color))
        self.color_format = COLOR_FORMATS[color]
        self.scaling_filter = get("scaling-filter", kf.integer, DEFAULT_SCALING_FILTER)
        if self.scaling_filter not in SCALING_FILTERS:  # :455-472
            raise ConfigError("{}: scaling-filter={} is not one nvinfer accepts ({})".format(
                path, self.scaling_filter, ", ".join(str(v) for v in sorted(SCALING_FILTERS))))
        # booleans, as nvinfer reads them (g_key_file_get_boolean, :352-361): true/false/1/0
        self.maintain_aspect_ratio = get("maintain-aspect-ratio", kf.boolean, False)
        self.symmetric_padding = get("symmetric-padding", kf.boolean, False)
        self.onnx_file = os.path.join(self.folder, get("onnx-file", kf.string))
        self.engine_file = os.path.join(self.folder, get("model-engine-file", kf.string))
        self.labels_file = os.path.join(self.folder, get("labelfile-path", kf.string))
        self.custom_lib = os.path.join(self.folder, get("custom-lib-path", kf.string))
        self.parse_func = get("parse-bbox-func-name", kf.string)
        self.num_classes = get("num-detected-classes", kf.integer)
        if self.num_classes < 1:
            raise ConfigError("{}: num-detected-classes={} (must be >= 1)".format(path, self.num_classes))
        self.output_names = get("output-blob-names", kf.string_list)
        self.batch_size = get("batch-size", kf.integer, 1)
        self.network_mode = kf.integer(PROPERTY, "network-mode") if "network-mode" in keys else None
        self.cluster_mode = get("cluster-mode", kf.integer)
        if self.cluster_mode not in (CLUSTER_NMS, CLUSTER_NONE):
            raise ConfigError("{}: cluster-mode {} is not emulated ({} = NMS, {} = none)".format(
                path, self.cluster_mode, CLUSTER_NMS, CLUSTER_NONE))
        self.class_attrs = read_class_attrs(kf, self.num_classes, path)
        try:
            self.labels = read_nvinfer_labels(self.labels_file)
        except Exception as e:  # by design: whatever cannot be read is not a labels file
            raise InputFileError("cannot read labelfile-path {} of {}: {}".format(
                self.labels_file, path, getattr(e, "strerror", None) or e))
        if len(self.labels) < self.num_classes:
            raise ConfigError("{} lists {} labels, fewer than num-detected-classes={} in {}".format(
                self.labels_file, len(self.labels), self.num_classes, path))

    @property
    def layout(self):
        """The output layout that parse-bbox-func-name's parser reads (ConfigError for a parser not edgeexport's)."""
        for layout, function in PARSER_FUNCTIONS.items():
            if function == self.parse_func:
                return layout
        raise ConfigError("{}: parse-bbox-func-name {} is not one of edgeexport's parsers (available: {})".format(
            self.path, self.parse_func, ", ".join(sorted(PARSER_FUNCTIONS.values()))))

    def network_input(self, frame_rgb):
        """What nvinfer feeds the network for an 8-bit RGB frame under this config, [1, 3, H, W] float32, and the
        Scale that maps the network's boxes back to the frame."""
        small, scale = scale_frame(frame_rgb, self.net_w, self.net_h, self.scaling_filter,
                                   self.maintain_aspect_ratio, self.symmetric_padding)
        return network_input_from_8bit(small, self.offsets, self.net_scale_factor, self.color_format), scale

    def detections(self, outputs, scale, parser=None, class_attrs=None):
        """What nvinfer attaches to a frame, from the network's outputs for it ({name: array}, no batch dim): the
        parser's candidates (``parser``: the compiled C++ library; None: its NumPy reference, tested equal),
        clustered under cluster-mode with each class's attributes, mapped back to the frame by ``scale`` (from
        network_input) and filtered per class. ``class_attrs`` replaces the config's (evaluate lowers the
        thresholds: mAP ranks detections down to low scores)."""
        attrs = self.class_attrs if class_attrs is None else class_attrs
        thresholds = [float(a.pre) for a in attrs]
        if parser is not None:
            cand = parser.parse(self.layout, [(n, outputs[n]) for n in self.output_names], self.net_w, self.net_h,
                                thresholds, self.num_classes)
        else:
            cand = parse_outputs(self.layout, outputs, self.net_w, self.net_h, thresholds, self.num_classes)
        return to_frame(cluster(cand, attrs, self.cluster_mode), scale, attrs,
                        clamp_top_left=self.deepstream_version[:2] >= (6, 3))
