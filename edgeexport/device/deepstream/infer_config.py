"""Render nvinfer's infer_config.txt from a BundleMeta (deepstream-app configs: deepstream_config.py).

Every value comes from the metadata; none is typed by hand. Paths are relative to the config file, which is how
nvinfer resolves them. Every key is one gst-nvinfer's parser reads in 6.0.1 and 6.3 (tests/device/
deepstream_keys.json).
Device-side safe (Python 3.6).
"""
from ..meta import NMS_NODE_NAME, BundleMeta
from ..naming import engine_file_name, network_mode

PARSER_FUNCTIONS = {"boxes_scores": "NvDsInferParseEdgeExport", "top_class": "NvDsInferParseEdgeExportTopClass",
                    "efficient_nms": "NvDsInferParseEdgeExportNMS"}
# The bundle's parser (relative to the config file, as nvinfer resolves custom-lib-path): its Makefile builds the
# library in its own folder (make -C jetson/parser, which jetson/setup.sh runs), where this path names it.
PARSER_SOURCES = "jetson/parser"
PARSER_LIBRARY = PARSER_SOURCES + "/libnvdsparsebbox_edgeexport.so"
SCALING_FILTER_BILINEAR = 1


def _fmt(x):
    return "{:.6g}".format(x)


def keyfile_value(key, value):
    """``value`` as a GKeyFile value line reads it back: a line ends the value, so a newline, carriage return or
    NUL in it would start a new key or group (refused); GKeyFile's string reader unescapes backslash sequences and
    drops leading blanks (g_key_file_parse_value_as_string: \\s, \\n, \\t, \\r, \\\\), so a backslash is written
    as \\\\ and a leading blank as \\s."""
    from ..errors import UsageError
    text = str(value)
    if any(c in text for c in "\n\r\x00"):
        raise UsageError("{} {!r}: a newline or NUL cannot be written into a DeepStream config (it would start a new "
                         "key or group)".format(key, text))
    text = text.replace("\\", "\\\\")
    if text[:1] in (" ", "\t"):
        text = "\\s" + text[1:]
    return text


def render_groups(groups, header=None):
    """Key-file text from ``groups``: (name, [(key, value)], comment or None) each, in order; every value quoted
    or refused by GKeyFile's rules (keyfile_value), group and key names checked."""
    import re
    from ..errors import UsageError
    out = ["# " + line for line in header.splitlines()] + [""] if header else []
    for name, items, comment in groups:
        for text in [name] + [k for k, _ in items]:
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", str(text)):
                raise UsageError("{!r} is not a key-file group or key name".format(text))
        if comment:
            out += ["# " + line for line in comment.splitlines()]
        out.append("[{}]".format(name))
        out += ["{}={}".format(k, keyfile_value(k, v)) for k, v in items]
        out.append("")
    return "\n".join(out)


# What a user may tune in infer_config.txt on purpose (deepstream.bundle_check follows them): build_engine keeps them
# when it rewrites the file for the engine it built.
# What infer_config.txt names as int8-calib-file for a Q/DQ graph (export writes it, with why it is there).
EXPLICIT_INT8_CALIB_FILE = "model_int8.nvinfer-calib.txt"
EXPLICIT_INT8_CALIB_TEXT = (
    "# Not a calibration table. model_int8.onnx carries its INT8 scales in its Q/DQ nodes (explicit quantization).\n"
    "# nvinfer sets TensorRT's INT8 flag only when int8-calib-file names a file that exists, so infer_config.txt\n"
    "# names this one; TensorRT does not use a calibrator on a Q/DQ network. Written by edgeexport export.\n")
TUNED_PROPERTY_KEYS = ("scaling-filter", "maintain-aspect-ratio", "symmetric-padding", "interval")


def infer_config_text(meta, precision=None, gpu_id=0, batch_size=None, int8_calib_file=None, onnx_file=None,
                      workspace_mib=None, dla_core=None, nms_fp32=None, tuned=None):
    """infer_config.txt for nvinfer, derived from ``meta`` (a BundleMeta, its detection settings included).
    ``onnx_file``: the graph the engine was built from (the FP16 twin on TensorRT 11); ``workspace_mib``: what
    build_engine used, so that nvinfer, should it ever build the engine itself, uses the same; ``dla_core``: the
    DLA core the engine was built for (nvinfer then names it ``_dla<N>_`` and must be told to use that core, or it
    looks for a ``_gpu<id>_`` engine and builds one: nvdsinfer_model_builder.cpp:712-719 @6.0.1). ``nms_fp32``:
    whether the board's TensorRT needs EfficientNMS_TRT held in FP32 (build_engine knows; None: unknown, as at
    export, and then an FP16/INT8 efficient_nms config holds it, for the TensorRT < 8.4 it may meet). ``tuned``:
    the current config as {group: {key: raw value}} (KeyFile.to_dict), whose TUNED_PROPERTY_KEYS and
    ``[class-attrs-*]`` groups replace the exported ones (a user's thresholds survive a rebuild)."""
    if not isinstance(meta, BundleMeta):
        raise TypeError("meta must be a BundleMeta, got {}".format(type(meta).__name__))
    settings = meta.settings
    precision = precision or meta.precision
    batch = int(batch_size or meta.batch_size)
    h, w = meta.model.input_size
    # INT8 from the explicitly quantized twin wherever the bundle has one: its scales travel in the graph
    onnx_file = onnx_file or meta.graph_for(precision)
    explicit = precision == "int8" and bool(meta.onnx_int8_file) and onnx_file == meta.onnx_int8_file
    prop = [
        ("gpu-id", gpu_id),
        ("net-scale-factor", _fmt(meta.net_scale_factor)),
        ("offsets", ";".join(_fmt(o) for o in meta.offsets)),
        ("model-color-format", ["rgb", "bgr"].index(meta.color_format)),
        ("onnx-file", onnx_file),
        ("model-engine-file", engine_file_name(onnx_file, batch, precision, gpu_id, dla_core)),
        ("labelfile-path", "labels.txt"),
        ("batch-size", batch),
        ("network-mode", network_mode(precision)),
        ("num-detected-classes", meta.model.num_classes),
        ("infer-dims", "3;{};{}".format(h, w)),
        ("network-type", 0),
        ("process-mode", 1),
        ("gie-unique-id", 1),
        ("interval", 0),
        ("maintain-aspect-ratio", 0),
        ("scaling-filter", SCALING_FILTER_BILINEAR),
        ("output-blob-names", ";".join(meta.output_names)),
        ("parse-bbox-func-name", PARSER_FUNCTIONS[meta.layout]),
        ("custom-lib-path", PARSER_LIBRARY),
        ("cluster-mode", 4 if meta.layout == "efficient_nms" else 2),
    ]
    if dla_core is not None:
        prop += [("enable-dla", 1), ("use-dla-core", int(dla_core))]
    if meta.layout == "efficient_nms" and precision in ("fp16", "int8") and nms_fp32 is not False:
        # nvinfer builds the engine itself from onnx-file when model-engine-file is missing, fails to load or has
        # too small a batch (nvdsinfer_context_impl.cpp:1621-1630 @6.0.1), with network-mode's flags only; on
        # TensorRT < 8.4 the plugin's FP16 path returns every score minus 1 (tensorrt/build_engine.py
        # needs_fp32_nms). Its one per-layer knob: layer-device-precision=<layer>:<fp32|fp16|int8>:<gpu|dla>, a
        # GLib string list (gstnvinfer_property_parser.h:60, .cpp:689-695 @6.0.1), which the model builder applies
        # as setPrecision + setDeviceType on the layer of that name, with kSTRICT_TYPES
        # (nvdsinfer_model_builder.cpp:1005-1017); the plugin layer bears its node's name (meta.NMS_NODE_NAME).
        prop.append(("layer-device-precision", "{}:fp32:gpu;".format(NMS_NODE_NAME)))
    if precision == "int8":
        # nvinfer sets kINT8 only when it has a calibrator, and makes one only from an int8-calib-file that exists
        # (nvdsinfer_context_impl.cpp:1702-1706; without it "INT8 calibration file not specified. Trying FP16
        # mode.", nvdsinfer_model_builder.cpp:1024-1037 @6.0.1, the same in 6.1 ... 6.3). A Q/DQ graph needs kINT8
        # on weak typing, and TensorRT ignores a calibrator there ("Calibrator won't be used in explicit precision
        # mode", TensorRT 8.2.1.8: NVIDIA/TensorRT#1837): so the Q/DQ bundle names a file that exists and is never
        # read for scales (EXPLICIT_INT8_CALIB_FILE), for the day nvinfer builds the engine itself.
        prop.append(("int8-calib-file", int8_calib_file or (EXPLICIT_INT8_CALIB_FILE if explicit else
                                                            "calibration.cache")))
    if workspace_mib:
        prop.append(("workspace-size", int(workspace_mib)))
    attrs = [("pre-cluster-threshold", _fmt(settings.pre_cluster_threshold)),
             ("post-cluster-threshold", _fmt(settings.post_cluster_threshold)),
             ("nms-iou-threshold", _fmt(settings.nms_iou_threshold)),
             ("topk", settings.topk)]
    class_groups = [("class-attrs-all", attrs, None)]
    if tuned:
        kept = tuned.get("property", {})
        prop = [(k, kept[k] if k in TUNED_PROPERTY_KEYS and k in kept else v) for k, v in prop] + [(k, kept[k]) for k in TUNED_PROPERTY_KEYS
                                                         if k in kept and k not in dict(prop)]
        tuned_groups = [(g, list(items.items()), None) for g, items in tuned.items() if g.startswith("class-attrs-")]
        class_groups = tuned_groups or class_groups
    head = ("nvinfer config written by edgeexport from model.json; every value is derived, do not edit by hand:\n"
            "re-export instead. offsets = 255*mean ({} order); the 1/(255*std) scale is folded into the first\n"
            "convolution, hence net-scale-factor=1.").format(meta.color_format.upper())
    return render_groups([("property", prop, head)] + class_groups)
