"""Render nvinfer's infer_config.txt and deepstream-app's app_config.txt from a BundleMeta.

Every value comes from the metadata; none is typed by hand. Paths are relative to the config file, which is how
nvinfer and deepstream-app resolve them. Only keys that DeepStream 6.0.1 knows are written.
Device-side safe (Python 3.6).
"""
from .meta import BundleMeta
from .naming import engine_file_name, network_mode

# Keys documented for DeepStream 6.0 (Gst-nvinfer and deepstream-app reference tables of the 6.0 developer
# guide). Tests check every emitted key against these sets.
NVINFER_PROPERTY_KEYS_DS60 = frozenset("""
num-detected-classes net-scale-factor model-file proto-file int8-calib-file batch-size model-engine-file uff-file
onnx-file enable-dbscan labelfile-path mean-file gie-unique-id operate-on-gie-id operate-on-class-ids interval
input-object-min-width input-object-min-height input-object-max-width input-object-max-height uff-input-blob-name
network-mode offsets output-blob-names output-tensor-meta parse-bbox-func-name parse-bbox-instance-mask-func-name
custom-lib-path model-color-format classifier-async-mode process-mode classifier-threshold secondary-reinfer-interval
uff-input-order infer-dims uff-input-dims tlt-encoded-model tlt-model-key segmentation-threshold workspace-size
force-implicit-batch-dim gpu-id parse-classifier-func-name custom-network-config maintain-aspect-ratio
symmetric-padding scaling-filter scaling-compute-hw network-type cluster-mode filter-out-class-ids enable-dla
use-dla-core output-io-formats layer-device-precision network-input-order engine-create-func-name
output-instance-mask
""".split())
NVINFER_CLASS_ATTR_KEYS_DS60 = frozenset("""
threshold pre-cluster-threshold post-cluster-threshold eps group-threshold minBoxes dbscan-min-score
nms-iou-threshold topk roi-top-offset roi-bottom-offset detected-min-w detected-min-h detected-max-w detected-max-h
""".split())
APP_KEYS_DS60 = {
    "application": frozenset("enable-perf-measurement perf-measurement-interval-sec gie-kitti-output-dir "
                             "kitti-track-output-dir".split()),
    "tiled-display": frozenset("enable rows columns width height gpu-id nvbuf-memory-type".split()),
    "source": frozenset("enable type uri num-sources gpu-id cudadec-memtype nvbuf-memory-type camera-width "
                        "camera-height camera-fps-n camera-fps-d camera-v4l2-dev-node drop-frame-interval "
                        "intra-decode-enable latency camera-id select-rtp-protocol".split()),
    "streammux": frozenset("gpu-id live-source batch-size batched-push-timeout width height enable-padding "
                           "nvbuf-memory-type buffer-pool-size attach-sys-ts-as-ntp".split()),
    "primary-gie": frozenset("enable gpu-id gie-unique-id nvbuf-memory-type config-file batch-size "
                             "model-engine-file interval labelfile-path bbox-border-color0 bbox-bg-color0 "
                             "operate-on-gie-id operate-on-class-ids plugin-type".split()),
    "osd": frozenset("enable gpu-id border-width text-size text-color text-bg-color font show-clock "
                     "clock-x-offset clock-y-offset clock-text-size clock-color nvbuf-memory-type process-mode "
                     "display-text display-bbox display-mask".split()),
    "sink": frozenset("enable type sync source-id gpu-id nvbuf-memory-type container codec bitrate output-file "
                      "iframeinterval rtsp-port udp-port profile qos width height".split()),
    "tests": frozenset(["file-loop"]),
}

PARSER_FUNCTIONS = {"boxes_scores": "NvDsInferParseEdgeExport", "top_class": "NvDsInferParseEdgeExportTopClass",
                    "efficient_nms": "NvDsInferParseEdgeExportNMS"}
# The bundle's parser, built on the device by the bundle README's cmake line (relative to the config file).
PARSER_SOURCES = "edgeexport/device/parser"
PARSER_BUILD_DIR = "build"
PARSER_LIBRARY = PARSER_BUILD_DIR + "/libnvdsparsebbox_edgeexport.so"
SCALING_FILTER_BILINEAR = 1


def _fmt(x):
    return "{:.6g}".format(x)


def _render(groups):
    out = []
    for name, items, comment in groups:
        if comment:
            out += ["# " + line for line in comment.splitlines()]
        out.append("[{}]".format(name))
        out += ["{}={}".format(k, v) for k, v in items]
        out.append("")
    return "\n".join(out)


def infer_config_text(meta, precision=None, gpu_id=0, batch_size=None, int8_calib_file=None, onnx_file=None,
                      workspace_mib=None, dla_core=None):
    """infer_config.txt for nvinfer, derived from ``meta`` (a BundleMeta, its detection settings included).
    ``onnx_file``: the graph the engine was built from (the FP16 twin on TensorRT 11); ``workspace_mib``: what
    build_engine used, so that nvinfer, should it ever build the engine itself, uses the same; ``dla_core``: the
    DLA core the engine was built for (nvinfer then names it ``_dla<N>_`` and must be told to use that core, or it
    looks for a ``_gpu<id>_`` engine and builds one: nvdsinfer_model_builder.cpp:712-719 @6.0.1)."""
    if not isinstance(meta, BundleMeta):
        raise TypeError("meta must be a BundleMeta, got {}".format(type(meta).__name__))
    settings = meta.settings
    precision = precision or meta.precision
    batch = int(batch_size or meta.batch_size)
    h, w = meta.model.input_size
    onnx_file = onnx_file or meta.onnx_file
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
    if precision == "int8":
        prop.append(("int8-calib-file", int8_calib_file or "calibration.cache"))
    if workspace_mib:
        prop.append(("workspace-size", int(workspace_mib)))
    attrs = [("pre-cluster-threshold", _fmt(settings.pre_cluster_threshold)),
             ("post-cluster-threshold", _fmt(settings.post_cluster_threshold)),
             ("nms-iou-threshold", _fmt(settings.nms_iou_threshold)),
             ("topk", settings.topk)]
    head = ("nvinfer config written by edgeexport from model.json; every value is derived, do not edit by hand:\n"
            "re-export instead. offsets = 255*mean ({} order); the 1/(255*std) scale is folded into the first\n"
            "convolution, hence net-scale-factor=1.").format(meta.color_format.upper())
    return _render([("property", prop, head), ("class-attrs-all", attrs, None)])


def app_config_text(frame_width, frame_height, video_uri="file://input.mp4", fps_variant=False,
                    output_file="out.mp4", infer_config="infer_config.txt", perf_interval=5):
    """deepstream-app config: file source -> streammux at the source's resolution -> primary-gie -> osd -> sink.

    ``fps_variant``: a fakesink with sync=0 and no OSD, so the measured FPS is the pipeline's, not the clock's.
    """
    groups = [
        ("application", [("enable-perf-measurement", 1), ("perf-measurement-interval-sec", perf_interval)],
         "deepstream-app config written by edgeexport" + (" (FPS variant: fakesink, sync=0)" if fps_variant else "")),
        ("tiled-display", [("enable", 0), ("rows", 1), ("columns", 1), ("width", frame_width),
                           ("height", frame_height), ("gpu-id", 0), ("nvbuf-memory-type", 0)], None),
        ("source0", [("enable", 1), ("type", 3), ("uri", video_uri), ("num-sources", 1), ("gpu-id", 0),
                     ("cudadec-memtype", 0)], "type 3 = URI; relative file:// URIs resolve against this file"),
        ("streammux", [("gpu-id", 0), ("live-source", 0), ("batch-size", 1), ("batched-push-timeout", 40000),
                       ("width", frame_width), ("height", frame_height), ("enable-padding", 0),
                       ("nvbuf-memory-type", 0)], "at the source's own resolution: no extra scaling"),
        ("primary-gie", [("enable", 1), ("gpu-id", 0), ("gie-unique-id", 1), ("nvbuf-memory-type", 0),
                         ("config-file", infer_config)], None),
        ("osd", [("enable", 0 if fps_variant else 1), ("gpu-id", 0), ("border-width", 2), ("text-size", 14),
                 ("text-color", "1;1;1;1"), ("text-bg-color", "0.3;0.3;0.3;1"), ("font", "Serif"),
                 ("show-clock", 0), ("nvbuf-memory-type", 0)], None),
    ]
    if fps_variant:
        sink = [("enable", 1), ("type", 1), ("sync", 0), ("source-id", 0), ("gpu-id", 0)]
        comment = "type 1 = FakeSink"
    else:
        sink = [("enable", 1), ("type", 3), ("sync", 0), ("source-id", 0), ("gpu-id", 0), ("container", 1),
                ("codec", 1), ("bitrate", 4000000), ("output-file", output_file)]
        comment = "type 3 = File; container 1 = mp4; codec 1 = H.264"
    groups += [("sink0", sink, comment), ("tests", [("file-loop", 0)], None)]
    return _render(groups)
