"""deepstream-app configs for a bundle: any number of sources (files, image folders, RTSP/HTTP cameras, USB and CSI
cameras), a tracker, and display, file, RTSP-out, fake or message-broker sinks.

    python3 -m edgeexport.deepstream_config BUNDLE --source cam.mp4 --source rtsp://cam2/stream \
        --sink display --sink file --tracker iou [--out BUNDLE/deepstream_app.txt]

Every key written is one DeepStream's own config parser reads, in 6.0.1 as in 6.3 (tests/device/
deepstream_keys.json, extracted from apps-common/src/deepstream_config_file_parser.c and deepstream-app's
deepstream_app_config_parser.c of each version). Paths: deepstream-app resolves config-file, model-engine-file,
ll-config-file, msg-conv-config and file:// URIs against the config file's folder (get_absolute_file_path in the
same parser), but takes a file sink's output-file as given, relative to the directory it runs in
(deepstream_config_file_parser.c:1399-1402 @6.0.1): so the printed command runs it from the config's folder.
Device-side (Python 3.6).
"""
import math
import os
import re

from ..bundle import INFER_CONFIG
from .bundle_check import open_checked
from ..cli import ArgumentParser, frame_side, non_negative_int, positive_int, run_cli, tcp_port
from ..errors import UsageError
from ..outputs import RunOutputs
from .infer_config import render_groups
from .install import SUPPORTED_TEXT, deepstream_for, has_hardware_encoder
from .mjpeg_avi import list_images, write_mjpeg_avi
from .streams import BROKER_CONFIG, SINK_KINDS, Broker, Sink, Source, file_uri, has_credentials, redact

DEFAULT_MUX = (1920, 1080)
TILED = (1280, 720)
# deepstream-app's enums: deepstream_sources.h:35-44 and deepstream_sinks.h:33-45 (@6.0.1; 6.3 the same numbers)
SOURCE_TYPES = {"usb": 1, "file": 2, "images": 2, "http": 2, "rtsp": 4, "csi": 5}
# 2 is EglSink on dGPU and, on Jetson, EglSink in 6.0.1 and the 3D sink (nv3dsink) from 6.2 (IS_TEGRA in 6.2/6.3)
SINK_TYPES = {"fake": 1, "display": 2, "file": 3, "rtsp": 4, "msgbroker": 6}
CODEC_H264, CONTAINER_MP4 = 1, 1
ENC_HW, ENC_SW = 0, 1  # NvDsEncHwSwType
PAYLOAD_TYPES = {"full": 0, "minimal": 1}  # msg-conv-payload-type: PAYLOAD_DEEPSTREAM, PAYLOAD_DEEPSTREAM_MINIMAL
RTSP_MOUNT = "/ds-test"  # deepstream_sink_bin.c:488 @6.0.1
# nvmsgconv's default interval in deepstream-app (deepstream_config_file_parser.c:1335 @6.0.1): every 30th frame
MSG_FRAME_INTERVAL = 30


class AppConfig(object):
    """A deepstream-app config and the files beside it (tracker, msgconv and broker configs, image-folder AVIs).
    ``private``: the names among them (the config's own name: None) that hold a password and are written for
    their owner alone."""

    def __init__(self, text, extra_files, notes, run_dir, output_files, private=()):
        self.text, self.extra_files, self.notes = text, extra_files, notes
        self.run_dir, self.output_files, self.private = run_dir, output_files, set(private)


def _rel(path, folder):
    """``path`` relative to ``folder`` when it lies inside it (a bundle stays portable), else absolute."""
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    rel = os.path.relpath(path, folder)
    return path if rel.startswith("..") else rel


def _uri(source, folder):
    if source.kind in ("file", "images"):
        return file_uri(_rel(source.path, folder))
    return source.uri


def source_group(i, source, folder, gpu_id=0):
    items = [("enable", 1), ("type", SOURCE_TYPES[source.kind]), ("gpu-id", gpu_id), ("cudadec-memtype", 0)]
    if source.kind in ("file", "images", "http"):
        items.append(("uri", _uri(source, folder)))
    elif source.kind == "rtsp":
        # rtspsrc latency and reconnection (deepstream_source_bin.c create_rtsp_src_bin, :820-860 @6.0.1)
        items += [("uri", source.uri), ("latency", 200), ("rtsp-reconnect-interval-sec", 10)]
    elif source.kind == "usb":
        w, h, fps = source.mode
        items += [("camera-v4l2-dev-node", source.device), ("camera-width", w), ("camera-height", h),
                  ("camera-fps-n", fps), ("camera-fps-d", 1)]
    elif source.kind == "csi":
        w, h, fps = source.mode
        items += [("camera-csi-sensor-id", source.device), ("camera-width", w), ("camera-height", h),
                  ("camera-fps-n", fps), ("camera-fps-d", 1)]
    items.append(("num-sources", 1))
    return ("source{}".format(i), items, "{} (type {})".format(source.describe(), SOURCE_TYPES[source.kind]))


def _encoder(encoder, notes):
    if encoder in ("hw", "sw"):
        return ENC_HW if encoder == "hw" else ENC_SW
    hw = has_hardware_encoder()
    if hw is None:
        notes.append("enc-type=0 (hardware encoder): written for a board with NVENC; a Jetson Orin Nano has none "
                     "(pass --encoder sw for it)")
        return ENC_HW
    if not hw:
        notes.append("enc-type=1 (software, x264): this board has no hardware encoder")
    return ENC_HW if hw else ENC_SW


def sink_groups(sinks, enc_type, output_dir, notes, msg_interval=MSG_FRAME_INTERVAL, payload="full"):
    groups, outputs = [], []
    for j, sink in enumerate(sinks):
        name = "sink{}".format(j)
        items = [("enable", 1), ("type", SINK_TYPES[sink.kind]), ("gpu-id", 0), ("nvbuf-memory-type", 0)]
        comment = sink.kind
        if sink.kind == "fake":
            items.append(("sync", 0))
            comment = "fakesink, sync=0: the pipeline's own speed (look for **PERF lines)"
        elif sink.kind == "display":
            items.append(("sync", 1))
            comment = "EglSink on dGPU and Jetson 6.0.x, the 3D sink on Jetson from 6.2 (type 2 in both)"
        elif sink.kind == "file":
            output = sink.path or "out.mp4"
            items += [("sync", 0), ("container", CONTAINER_MP4), ("codec", CODEC_H264), ("enc-type", enc_type),
                      ("bitrate", 4000000), ("output-file", output)]
            outputs.append(os.path.join(output_dir, output) if not os.path.isabs(output) else output)
            comment = ("mp4, H.264, enc-type {} ({}); output-file is relative to the directory deepstream-app runs "
                       "in").format(enc_type, "hardware" if enc_type == ENC_HW else "software x264")
        elif sink.kind == "rtsp":
            port = sink.port or 8554
            items += [("sync", 0), ("codec", CODEC_H264), ("enc-type", enc_type), ("bitrate", 4000000),
                      ("rtsp-port", port), ("udp-port", 5400 + j)]
            notes.append("RTSP out: rtsp://<this board's address>:{}{}".format(port, RTSP_MOUNT))
            comment = "RTSP server at rtsp://<host>:{}{}".format(port, RTSP_MOUNT)
        elif sink.kind == "msgbroker":
            b = sink.broker
            items += [("sync", 0), ("msg-conv-config", "msgconv_config.txt"),
                      ("msg-conv-payload-type", PAYLOAD_TYPES[payload]),
                      # messages from the frame and object metadata nvinfer attaches (deepstream-app attaches no
                      # event metadata of its own; gstnvmsgconv.c:585-640 @6.0.1)
                      ("msg-conv-msg2p-new-api", 1), ("msg-conv-frame-interval", msg_interval),
                      ("msg-broker-proto-lib", b.lib), ("msg-broker-conn-str", b.conn_str), ("topic", b.topic)]
            if b.config_text() is not None:  # the credentials, in the adaptor's own config (owner-only)
                items.append(("msg-broker-config", BROKER_CONFIG))
            comment = "nvmsgconv + nvmsgbroker: {} payload to {}://{}:{}/{}".format(payload, b.scheme, b.host,
                                                                                     b.port, b.topic)
        groups.append((name, items, comment))
    return groups, outputs


def tracker_group(tracker, ds, folder):
    if tracker == "none":
        return None, {}
    if tracker == "iou":
        config, files = "tracker_iou.yml", {"tracker_iou.yml": iou_tracker_yaml(ds)}
    else:
        config, files = ds.sample_config("config_tracker_NvDCF_perf.yml"), {}
    # tracker-width/height: multiples of 32 for NvDCF (the samples' comment in their [tracker] group)
    items = [("enable", 1), ("tracker-width", 640), ("tracker-height", 384), ("ll-lib-file", ds.tracker_lib),
             ("ll-config-file", config), ("gpu-id", 0), ("display-tracking-id", 1)]
    return ("tracker", items, "{} tracker of DeepStream {}".format(tracker.upper(), ds.text)), files


def iou_tracker_yaml(ds):
    """The IOU tracker's settings for libnvds_nvmultiobjecttracker, with the sections and keys that DeepStream
    version's own IOU config has (samples/configs/deepstream-app/config_tracker_IOU.yml of each version; from 6.1
    it has preserveStreamUpdateOrder)."""
    lines = ["%YAML:1.0", "# IOU tracker written by edgeexport for DeepStream {}".format(ds.text), "BaseConfig:",
             "  minDetectorConfidence: 0", "TargetManagement:"]
    if ds.version[:2] >= (6, 1):
        lines.append("  preserveStreamUpdateOrder: 0")
    lines += ["  maxTargetsPerStream: 150", "  minIouDiff4NewTarget: 0.5", "  probationAge: 4",
              "  maxShadowTrackingAge: 38", "  earlyTerminationAge: 1", "TrajectoryManagement:", "  useUniqueID: 0",
              "DataAssociator:", "  dataAssociatorType: 0", "  associationMatcherType: 0", "  checkClassMatch: 1",
              "  minMatchingScore4Overall: 0.0", "  minMatchingScore4SizeSimilarity: 0.0",
              "  minMatchingScore4Iou: 0.0", "  matchingScoreWeight4SizeSimilarity: 0.4",
              "  matchingScoreWeight4Iou: 0.6", ""]
    return "\n".join(lines)


def msgconv_config_text(sources):
    """nvmsgconv's config: a [sensorN], [placeN] and [analyticsN] group per source id (deepstream_schema.cpp
    reads groups by these prefixes and ids, and logs "No entry for ..." on every message for a missing one:
    dsmeta_payload.cpp:52-60 @6.0.1). The sensor's description is the source without its credentials: nvmsgconv
    copies it into every full-payload message (dsmeta_payload.cpp:156 @6.0.1)."""
    groups = []
    for i, s in enumerate(sources):
        groups += [
            ("sensor{}".format(i), [("enable", 1), ("type", "Camera"), ("id", "source{}".format(i)),
                                    ("location", "0;0;0"), ("description", redact(s.text).replace("\n", " ")),
                                    ("coordinate", "0;0;0")], None),
            ("place{}".format(i), [("enable", 1), ("id", i), ("type", "camera"), ("name", "source{}".format(i)),
                                   ("location", "0;0;0"), ("coordinate", "0;0;0"), ("place-sub-field1", ""),
                                   ("place-sub-field2", ""), ("place-sub-field3", "")], None),
            ("analytics{}".format(i), [("enable", 1), ("id", "edgeexport"), ("description", "edgeexport detector"),
                                       ("source", "edgeexport"), ("version", "1.0")], None),
        ]
    return render_groups(groups, "nvmsgconv config written by edgeexport")


def mux_size(sources, given=None):
    if given:
        return tuple(given)
    sizes = [s.size for s in sources if s.size]
    if len(sources) == 1 and sizes:
        return sizes[0]  # one stream at its own size: boxes come back in its pixels, no extra scaling
    return DEFAULT_MUX


def app_config(meta, bundle_dir, sources, sinks, folder, tracker="none", ds=None, gpu_id=0, mux=None,
               encoder="auto", payload="full", msg_interval=MSG_FRAME_INTERVAL, perf_interval=5):
    """The deepstream-app config for the bundle in ``bundle_dir`` (its BundleMeta ``meta``) with ``sources`` and
    ``sinks``, to be written into ``folder``. Returns an AppConfig."""
    if not sources:
        raise UsageError("give at least one --source")
    if not sinks:
        raise UsageError("give at least one --sink ({})".format(", ".join(SINK_KINDS)))
    n = len(sources)
    if n > meta.batch_size or (not meta.dynamic_batch and n != meta.batch_size):
        raise UsageError("{} sources need an engine of batch {}, and this bundle's ONNX has a {} batch of {}: "
                         "re-export it with --batch-size {}".format(n, n, "dynamic (max)" if meta.dynamic_batch
                                                                    else "static", meta.batch_size, n))
    needs_version = tracker != "none" or any(s.kind == "msgbroker" for s in sinks)
    if needs_version and ds is None:
        raise UsageError("DeepStream is not installed here: pass --deepstream-version (e.g. 6.0.1, 6.3) for the "
                         "tracker and message-broker libraries")
    notes = []
    if ds is not None and ds.newer_than_known:
        notes.append("DeepStream {}: keys written as for 6.3, the newest whose config parser was checked".format(
            ds.text))
    for sink in sinks:
        if sink.kind == "msgbroker":
            sink.broker.lib = ds.protocol_adaptor(sink.broker.scheme)
    w, h = mux_size(sources, mux)
    live = any(s.live for s in sources)
    enc_type = _encoder(encoder, notes) if any(s.kind in ("file", "rtsp") for s in sinks) else ENC_HW
    visual = any(s.kind in ("display", "file", "rtsp") for s in sinks)
    cols = int(math.ceil(math.sqrt(n)))  # as square as it gets: 3 streams on 2x2, 5 on 3x2
    rows = int(math.ceil(n / float(cols)))
    groups = [("application", [("enable-perf-measurement", 1), ("perf-measurement-interval-sec", perf_interval)],
               "deepstream-app config written by edgeexport: {} source(s), sinks: {}".format(
                   n, ", ".join(s.kind for s in sinks)))]
    groups.append(("tiled-display", [("enable", 1 if n > 1 and visual else 0), ("rows", rows), ("columns", cols),
                                     ("width", TILED[0] if n > 1 else w), ("height", TILED[1] if n > 1 else h),
                                     ("gpu-id", gpu_id), ("nvbuf-memory-type", 0)], None))
    groups += [source_group(i, s, folder, gpu_id) for i, s in enumerate(sources)]
    sink_list, outputs = sink_groups(sinks, enc_type, folder, notes, msg_interval, payload)
    groups += sink_list
    groups.append(("osd", [("enable", 1 if visual else 0), ("gpu-id", gpu_id), ("border-width", 2),
                           ("text-size", 15), ("text-color", "1;1;1;1"), ("text-bg-color", "0.3;0.3;0.3;1"),
                           ("font", "Serif"), ("show-clock", 0), ("nvbuf-memory-type", 0)], None))
    # one frame per source per batch; the timeout (microseconds) lets a slow source not hold the others back
    groups.append(("streammux", [("gpu-id", gpu_id), ("live-source", 1 if live else 0), ("batch-size", n),
                                 ("batched-push-timeout", 40000), ("width", w), ("height", h),
                                 ("enable-padding", 0), ("nvbuf-memory-type", 0)],
                   "{}x{}: {}".format(w, h, "the source's own size" if n == 1 and mux is None and sources[0].size
                                      else "every source scaled to it")))
    # batch-size here overrides infer_config.txt's (deepstream_primary_gie_bin.c:134-135 @6.0.1); the engine stays
    # the one infer_config.txt names (build_engine keeps it naming what it built): one with a larger batch serves
    # (nvinfer rebuilds only when the engine's max batch is below batch-size, nvdsinfer_context_impl.cpp:1621-1630)
    groups.append(("primary-gie", [("enable", 1), ("gpu-id", gpu_id), ("gie-unique-id", 1),
                                   ("nvbuf-memory-type", 0),
                                   ("config-file", _rel(os.path.join(bundle_dir, INFER_CONFIG), folder)),
                                   ("batch-size", n)],
                   "an engine for batch {} or more: python3 -m edgeexport.build_engine {} --batch {}".format(
                       n, _rel(bundle_dir, folder), n)))
    extra = {}
    if tracker != "none":
        group, files = tracker_group(tracker, ds, folder)
        groups.append(group)
        extra.update(files)
    groups.append(("tests", [("file-loop", 0)], None))
    private = set()
    brokers = [s.broker for s in sinks if s.kind == "msgbroker"]
    if brokers:
        extra["msgconv_config.txt"] = msgconv_config_text(sources)
        if brokers[0].config_text() is not None:
            extra[BROKER_CONFIG] = brokers[0].config_text()
            private.add(BROKER_CONFIG)
    if any(has_credentials(s.text) for s in sources) or any(b.secret_in_conn_str for b in brokers):
        private.add(None)  # the config itself holds a camera's or the broker's password
        notes.append("the config holds a password: written readable by its owner alone")
    return AppConfig(render_groups(groups), extra, notes, folder, outputs, private)


def prepare_sources(texts, folder, base_dir="."):
    """Parse ``--source`` strings; an image folder becomes an MJPEG AVI in ``folder`` (deepstream-app has no image
    source type). Returns (sources, written files)."""
    sources, written = [], []
    for text in texts:
        s = Source.parse(text, base_dir)
        if s.kind == "images":
            name = os.path.basename(os.path.normpath(s.path)) or "images"
            avi = os.path.join(folder, "{}_{}.avi".format(name, len(sources)))
            w, h, frames = write_mjpeg_avi(list_images(s.path), avi)
            s = Source("images", text, uri=file_uri(avi), path=avi, size=(w, h))
            written += [avi, avi + ".frames.json"]
        sources.append(s)
    return sources, written


def _is_local(text):
    """A --source that names a file or folder here (not a camera or a network URI)."""
    low = (text or "").strip().lower()
    return bool(low) and not re.match(r"^(rtsps?|https?|csi)://", low) and not low.startswith("/dev/video")


def local_source_paths(texts):
    """The files and image folders the ``--source`` strings name here: what a run reads, so never an output."""
    return [Source.parse(t).path for t in texts if _is_local(t)]


def add_stream_arguments(p):
    """The options that say what runs: sources, sinks, tracker, engine. Shared by this writer and the pyds app
    (edgeexport.deepstream_app), so both read a source and a sink the same way."""
    p.add_argument("--source", action="append", default=[], metavar="S",
                   help="a file, an image folder, rtsp://..., http://..., /dev/videoN[:WxH@FPS] or csi://N[:WxH@FPS]; "
                        "repeat for several streams (batch = number of sources)")
    p.add_argument("--sink", action="append", default=[], choices=SINK_KINDS,
                   help="display, file (mp4), rtsp (RTSP server), fake (FPS only) or msgbroker; repeatable "
                        "(default: file)")
    p.add_argument("--tracker", default="none", choices=["none", "iou", "nvdcf"])
    p.add_argument("--output-file", default="out.mp4", help="the file sink's mp4")
    p.add_argument("--rtsp-port", type=tcp_port, default=8554)
    p.add_argument("--broker", help="for --sink msgbroker: mqtt://HOST:PORT/TOPIC, kafka://..., amqp://USER:PASS@...")
    p.add_argument("--payload", default="full", choices=sorted(PAYLOAD_TYPES),
                   help="nvmsgconv schema: full (one message per object) or minimal (one per frame)")
    p.add_argument("--msg-interval", type=positive_int, default=MSG_FRAME_INTERVAL,
                   help="send metadata every Nth frame (nvmsgconv's frame-interval)")
    p.add_argument("--mux-size", type=frame_side, nargs=2, metavar=("W", "H"),
                   help="nvstreammux resolution (default: the source's own size for one source, else 1920x1080)")
    p.add_argument("--encoder", default="auto", choices=["auto", "hw", "sw"],
                   help="file/RTSP encoder: auto = software on a Jetson Orin Nano (no NVENC), hardware elsewhere")
    p.add_argument("--gpu-id", type=non_negative_int, default=0)
    p.add_argument("--deepstream-version", metavar="X.Y[.Z]",
                   help="DeepStream to write for, {} (default: the one installed here; needed off the board for "
                        "a tracker or a broker)".format(SUPPORTED_TEXT))
    return p


def sinks_from_args(args):
    sinks = []
    for kind in args.sink or ["file"]:
        if kind == "msgbroker":
            if not args.broker:
                raise UsageError("--sink msgbroker needs --broker URL (mqtt://HOST:PORT/TOPIC, kafka://, amqp://)")
            sinks.append(Sink(kind, broker=Broker(args.broker)))
        else:
            sinks.append(Sink(kind, path=args.output_file if kind == "file" else None,
                              port=args.rtsp_port if kind == "rtsp" else None))
    if args.broker and not any(s.kind == "msgbroker" for s in sinks):
        raise UsageError("--broker is given but no --sink msgbroker")
    if sum(s.kind == "msgbroker" for s in sinks) > 1:
        # deepstream-app links only the first broker sink, to the tee after nvinfer and the tracker: one analytics
        # path feeds one broker (add_and_link_broker_sink, deepstream_app.c:635-675 @6.0.1)
        raise UsageError("one --sink msgbroker at most: deepstream-app sends the one analytics stream to one broker")
    return sinks


def get_args_parser(add_help=True):
    p = ArgumentParser(description="Write a deepstream-app config for a bundle: sources, tracker, sinks.",
                       add_help=add_help)
    p.add_argument("bundle", help="the bundle folder export.py wrote")
    add_stream_arguments(p)
    p.add_argument("--out", help="the config to write (default: BUNDLE/deepstream_app.txt); --output-file is "
                                 "relative to its folder, where the printed command runs deepstream-app")
    return p


def main(args):
    bundle = open_checked(args.bundle)
    out = os.path.abspath(args.out or os.path.join(bundle.path, "deepstream_app.txt"))
    folder = os.path.dirname(out)
    if not os.path.isdir(folder):
        raise UsageError("--out {}: folder {} does not exist".format(args.out, folder))
    outputs = RunOutputs(reads=local_source_paths(args.source), bundle=bundle)
    outputs.file(out, "--out")
    sinks = sinks_from_args(args)
    for s in sinks:
        if s.kind == "file":  # output-file is relative to where deepstream-app runs: the config's folder
            outputs.file(os.path.join(folder, s.path), "--output-file")
    ds = deepstream_for(args.deepstream_version)
    sources, written = prepare_sources(args.source, folder)
    try:
        cfg = app_config(bundle.meta, bundle.path, sources, sinks, folder, args.tracker, ds, args.gpu_id,
                         args.mux_size, args.encoder, args.payload, args.msg_interval)
    except BaseException:
        for path in written:
            if os.path.exists(path):
                os.unlink(path)
        raise
    for name in sorted(cfg.extra_files):
        outputs.file(os.path.join(folder, name), "a file the config names")
    for name, text in sorted(cfg.extra_files.items()):
        outputs.write_text(os.path.join(folder, name), text, private=name in cfg.private)
    outputs.write_text(out, cfg.text, private=None in cfg.private)
    for s in sources:
        print("source: {}".format(s.describe()))
    for line in cfg.notes:
        print("note: " + line)
    outputs.report()
    print("run:   cd {} && deepstream-app -c {}".format(folder, os.path.basename(out)))
    return 0


def cli(argv=None):
    run_cli(get_args_parser, main, argv)


if __name__ == "__main__":
    cli()
