"""The bundle in a Python DeepStream app (pyds), for those who build on Python rather than deepstream-app:

    python3 -m edgeexport.deepstream_app BUNDLE --source S [--source S ...] [--sink display|file|rtsp|fake|msgbroker]
        [--tracker none|iou|nvdcf] [--output-file out.mp4] [--dump DIR N] [--coco-out FILE]

Sources, sinks and tracker are read as edgeexport.deepstream_config reads them
(edgeexport.device.deepstream.streams), and
the pipeline is the one deepstream-app builds for them: per source, a decoder (uridecodebin; v4l2src or
nvarguscamerasrc for cameras) then nvvideoconvert and NVMM caps before nvstreammux, as deepstream-app's source bin
does (apps-common/src/deepstream_source_bin.c create_uridecode_src_bin, :1155-1235 @6.0.1) -- a decoder linked
straight into nvstreammux fails on dGPU and with software-decoded clips; nvstreammux at the source's own size (one
source), nvinfer, the tracker, a tiler for several sources, nvdsosd, and a tee into each sink. Every link is
checked. Ctrl-C sends EOS, so an mp4 being written is finished and playable.

Prints each stream's FPS. ``--dump DIR N`` saves the first N frames of each source as nvinfer received them (RGBA,
.npy) with nvinfer's raw output tensors (output-tensor-meta), for ``python -m edgeexport.parity BUNDLE --dump DIR``.
``--coco-out FILE`` (image-folder sources) writes the detections as COCO results, image ids in folder order.
Needs DeepStream 6.0.1+ with its Python bindings (pyds) and GStreamer's gi bindings. Device-side (Python 3.6).
"""
import ctypes
import json
import os
import platform
import shutil
import signal
import tempfile
import time

import numpy as np

from .bundle_check import open_checked
from ..cli import ArgumentParser, run_cli
from ..errors import BackendUnavailableError, InferenceError, UsageError
from ..fileio import atomic_write_text
from ..outputs import RunOutputs
from .app_config import (PAYLOAD_TYPES, RTSP_MOUNT, TILED, add_stream_arguments, iou_tracker_yaml, msgconv_config_text,
                         local_source_paths, mux_size, prepare_sources, sinks_from_args)
from .install import deepstream_for, has_hardware_encoder
from .mjpeg_avi import read_frame_list
from .streams import BROKER_CONFIG

NVMM_CAPS = "video/x-raw(memory:NVMM)"
NVBUF_MEM_CUDA_UNIFIED = 3  # NvBufSurfaceMemType: on dGPU, frames the CPU can map (get_nvds_buf_surface)
FPS_INTERVAL_S = 5.0
# NvDsInferDataType -> numpy (nvdsinfer.h: FLOAT = 0, HALF = 1, INT8 = 2, INT32 = 3)
LAYER_DTYPES = {0: (np.float32, ctypes.c_float), 3: (np.int32, ctypes.c_int32)}


class Elements(object):
    """GStreamer elements by factory name. The host tests hand the app another object with this interface, which
    stands standard elements in for NVIDIA's."""

    def __init__(self, Gst):
        self.Gst = Gst

    def make(self, factory, name, **props):
        element = self.Gst.ElementFactory.make(factory, name)
        if element is None:
            raise BackendUnavailableError("GStreamer element {!r} is not available here: is DeepStream installed "
                                          "(gst-inspect-1.0 {})?".format(factory, factory))
        for key, value in props.items():
            element.set_property(key.replace("_", "-"), value)
        return element

    def caps(self, text):
        return self.Gst.Caps.from_string(text)

    def available(self, factory):
        return self.Gst.ElementFactory.find(factory) is not None


def set_if_present(element, name, value):
    """Properties some DeepStream versions have and others not (bufapi-version went with JetPack 5)."""
    if element.find_property(name) is not None:
        element.set_property(name, value)


def request_pad(element, template):
    # get_request_pad is deprecated from GStreamer 1.20 (request_pad_simple); JetPack 4.6 has GStreamer 1.14
    get = getattr(element, "request_pad_simple", None) or element.get_request_pad
    pad = get(template)
    if pad is None:
        raise BackendUnavailableError("{} gave no {} pad".format(element.get_name(), template))
    return pad


def link(a, b):
    if not a.link(b):
        raise BackendUnavailableError("cannot link {} to {}: their caps do not meet".format(a.get_name(),
                                                                                           b.get_name()))


def link_chain(elements):
    for a, b in zip(elements, elements[1:]):
        link(a, b)


class StreamCounter(object):
    """Frames per source, printed as FPS every few seconds."""

    def __init__(self, n, echo=print):
        self.n, self.echo = n, echo
        self.counts, self.total = [0] * n, [0] * n
        self.t0 = self.last = time.time()

    def frame(self, source_id):
        if 0 <= source_id < self.n:
            self.counts[source_id] += 1
            self.total[source_id] += 1
        now = time.time()
        if now - self.last >= FPS_INTERVAL_S:
            dt = now - self.last
            self.echo("fps: " + ", ".join("source{} {:.2f}".format(i, c / dt) for i, c in enumerate(self.counts)))
            self.counts, self.last = [0] * self.n, now


class App(object):
    """The pipeline for one bundle and its sources and sinks, and what its probe does with the metadata."""

    def __init__(self, Gst, pyds, elements, bundle, sources, sinks, args, ds, workdir, echo=print):
        self.Gst, self.pyds, self.el, self.bundle = Gst, pyds, elements, bundle
        self.sources, self.sinks, self.args, self.ds, self.workdir, self.echo = sources, sinks, args, ds, workdir, echo
        self.labels = bundle.labels
        self.jetson = platform.machine() == "aarch64"
        self.counter = StreamCounter(len(sources), echo)
        self.dump_dir, self.dump_left = None, [0] * len(sources)
        if args.dump:
            self.dump_dir, n = args.dump[0], int(args.dump[1])
            self.dump_left = [n] * len(sources)
        self.coco, self.frame_files = [], [read_frame_list(s.path) if s.kind == "images" else None
                                           for s in sources]
        self.error = None

    # --- sources -----------------------------------------------------------------------------------------------
    def source_bin(self, i, source):
        Gst, el = self.Gst, self.el
        b = Gst.Bin.new("source-bin-{}".format(i))
        conv = el.make("nvvideoconvert", "source-conv-{}".format(i))
        nvmm = el.make("capsfilter", "source-nvmm-{}".format(i), caps=el.caps(NVMM_CAPS))
        if source.kind in ("file", "images", "http", "rtsp"):
            decode = el.make("uridecodebin", "source-decode-{}".format(i), uri=source.uri)
            queue = el.make("queue", "source-queue-{}".format(i))
            decode.connect("pad-added", self._on_decoded_pad, queue)
            decode.connect("source-setup", self._on_source_setup)
            chain, added = [queue, conv, nvmm], [decode]
        elif source.kind == "usb":
            w, h, fps = source.mode
            cam = el.make("v4l2src", "source-cam-{}".format(i), device="/dev/video{}".format(source.device))
            raw = el.make("capsfilter", "source-raw-{}".format(i), caps=el.caps(
                "video/x-raw, width={}, height={}, framerate={}/1".format(w, h, fps)))
            # v4l2src -> videoconvert -> nvvideoconvert -> NVMM (deepstream_test_1_usb.py in deepstream_python_apps)
            chain, added = [cam, raw, el.make("videoconvert", "source-vconv-{}".format(i)), conv, nvmm], []
        else:  # csi
            w, h, fps = source.mode
            cam = el.make("nvarguscamerasrc", "source-cam-{}".format(i), sensor_id=source.device)
            set_if_present(cam, "bufapi-version", True)  # deepstream_source_bin.c:74 @6.0.1
            raw = el.make("capsfilter", "source-raw-{}".format(i), caps=el.caps(
                NVMM_CAPS + ", width={}, height={}, framerate={}/1, format=NV12".format(w, h, fps)))
            chain, added = [cam, raw, conv, nvmm], []
        for e in added + chain:
            b.add(e)
        link_chain(chain)
        b.add_pad(Gst.GhostPad.new("src", nvmm.get_static_pad("src")))
        return b

    def _on_decoded_pad(self, decodebin, pad, queue):
        caps = pad.get_current_caps() or pad.query_caps(None)
        if not caps.get_structure(0).get_name().startswith("video/"):
            return  # audio and other streams of the file are not ours
        result = pad.link(queue.get_static_pad("sink"))
        if result != self.Gst.PadLinkReturn.OK:
            self.error = "cannot link {}'s decoded video to the pipeline ({})".format(decodebin.get_name(), result)

    def _on_source_setup(self, decodebin, source):
        # the RTSP latency deepstream-app gives rtspsrc (cb_sourcesetup, deepstream_source_bin.c:285-291 @6.0.1)
        if source.find_property("latency") is not None:
            source.set_property("latency", 200)

    # --- sinks --------------------------------------------------------------------------------------------------
    def _encoder(self, j, stream=False):
        """nvvideoconvert, caps, and the H.264 encoder. ``stream``: for RTSP, where a client may join at any time:
        the Jetson's hardware encoder repeats SPS/PPS before every IDR frame, as deepstream-app's RTSP sink sets
        it on integrated GPUs (insert-sps-pps=1, deepstream_sink_bin.c:604-607 @6.0.1, :645 @6.3)."""
        el = self.el
        hw = self.args.encoder == "hw" or (self.args.encoder == "auto" and has_hardware_encoder() is not False and
                                           el.available("nvv4l2h264enc"))
        if hw:
            enc = el.make("nvv4l2h264enc", "sink-enc-{}".format(j), bitrate=4000000)
            set_if_present(enc, "bufapi-version", True)  # deepstream_sink_bin.c:364-366 @6.0.1 (Jetson)
            if stream and self.jetson:
                set_if_present(enc, "insert-sps-pps", True)
            return [el.make("nvvideoconvert", "sink-conv-{}".format(j)),
                    el.make("capsfilter", "sink-caps-{}".format(j), caps=el.caps(NVMM_CAPS + ", format=I420")), enc]
        # x264enc takes kbit/s (deepstream_sink_bin.c:376 @6.0.1) and system memory
        return [el.make("nvvideoconvert", "sink-conv-{}".format(j)),
                el.make("capsfilter", "sink-caps-{}".format(j), caps=el.caps("video/x-raw, format=I420")),
                el.make("x264enc", "sink-enc-{}".format(j), bitrate=4000)]

    def sink_chain(self, j, sink):
        el, ds = self.el, self.ds
        queue = el.make("queue", "sink-queue-{}".format(j))
        if sink.kind == "fake":
            return [queue, el.make("fakesink", "sink-{}".format(j), sync=False, enable_last_sample=False)]
        if sink.kind == "display":
            if self.jetson and (ds is None or ds.version[:2] >= (6, 2)):
                return [queue, el.make("nv3dsink", "sink-{}".format(j), sync=True)]  # the 3D sink from 6.2
            if self.jetson:
                return [queue, el.make("nvegltransform", "sink-egl-{}".format(j)),
                        el.make("nveglglessink", "sink-{}".format(j), sync=True)]
            return [queue, el.make("nveglglessink", "sink-{}".format(j), sync=True)]
        if sink.kind == "file":
            return [queue] + self._encoder(j) + [
                el.make("h264parse", "sink-parse-{}".format(j)), el.make("qtmux", "sink-mux-{}".format(j)),
                el.make("filesink", "sink-{}".format(j), location=sink.path, sync=False, **{"async": False})]
        if sink.kind == "rtsp":
            udp_port = 5400 + j
            self._rtsp_server(sink.port, udp_port)
            # encoder -> h264parse -> payloader, as deepstream-app's RTSP sink bin; the parser sends SPS/PPS with
            # every IDR frame (config-interval=-1, which deepstream-app sets on h264parse from 6.2:
            # deepstream_sink_bin.c:591-592 @6.2, only on h265parse before), so late clients can decode
            parse = el.make("h264parse", "sink-parse-{}".format(j))
            set_if_present(parse, "config-interval", -1)
            return [queue] + self._encoder(j, stream=True) + [parse,
                el.make("rtph264pay", "sink-pay-{}".format(j)),
                el.make("udpsink", "sink-{}".format(j), host="224.224.255.255", port=udp_port, sync=True,
                        **{"async": False})]
        # msgbroker: nvmsgconv + nvmsgbroker, as deepstream-app's sink bin sets them (deepstream_sink_bin.c:225-250)
        b = sink.broker
        conf = os.path.join(self.workdir, "msgconv_config.txt")
        atomic_write_text(conf, msgconv_config_text(self.sources))
        conv = el.make("nvmsgconv", "sink-msgconv-{}".format(j), config=conf,
                       payload_type=PAYLOAD_TYPES[self.args.payload], frame_interval=self.args.msg_interval,
                       msg2p_newapi=True)
        extra = {}
        if b.config_text() is not None:  # credentials: the adaptor's own config, readable by this user alone
            extra["config"] = os.path.join(self.workdir, BROKER_CONFIG)
            atomic_write_text(extra["config"], b.config_text(), private=True)
        return [queue, conv, el.make("nvmsgbroker", "sink-{}".format(j), proto_lib=b.lib, conn_str=b.conn_str,
                                     topic=b.topic, sync=False, **extra)]

    def _rtsp_server(self, rtsp_port, udp_port):
        import gi
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GstRtspServer
        server = GstRtspServer.RTSPServer.new()
        server.props.service = str(rtsp_port)
        server.attach(None)
        factory = GstRtspServer.RTSPMediaFactory.new()
        factory.set_launch('( udpsrc name=pay0 port={} buffer-size=524288 caps="application/x-rtp, media=video, '
                           'clock-rate=90000, encoding-name=(string)H264, payload=96" )'.format(udp_port))
        factory.set_shared(True)
        server.get_mount_points().add_factory(RTSP_MOUNT, factory)
        self.echo("RTSP out: rtsp://<this board's address>:{}{}".format(rtsp_port, RTSP_MOUNT))
        self._server = server

    # --- the pipeline -------------------------------------------------------------------------------------------
    def build(self):
        Gst, el, args = self.Gst, self.el, self.args
        n = len(self.sources)
        pipeline = Gst.Pipeline.new("edgeexport")
        w, h = mux_size(self.sources, args.mux_size)
        # --dump reads frames on the CPU: on dGPU they must be in unified memory (deepstream_imagedata-multistream.py
        # sets NVBUF_MEM_CUDA_UNIFIED on the mux and converters); Jetson's default memory is mappable
        memory = {"nvbuf_memory_type": NVBUF_MEM_CUDA_UNIFIED} if self.dump_dir and not self.jetson else {}
        mux = el.make("nvstreammux", "mux", batch_size=n, width=w, height=h, batched_push_timeout=40000,
                      live_source=any(s.live for s in self.sources), **memory)
        pipeline.add(mux)
        for i, source in enumerate(self.sources):
            b = self.source_bin(i, source)
            pipeline.add(b)
            if b.get_static_pad("src").link(request_pad(mux, "sink_{}".format(i))) != Gst.PadLinkReturn.OK:
                raise BackendUnavailableError("cannot link source {} to nvstreammux".format(i))
        # batch = the number of sources; the engine is the one infer_config.txt names (as in deepstream_config)
        extra = {"output_tensor_meta": True} if self.dump_dir else {}
        infer = el.make("nvinfer", "infer", config_file_path=self.bundle.infer_config_path, batch_size=n, **extra)
        chain = [mux]
        if self.dump_dir:
            # RGBA frames for get_nvds_buf_surface, and nvinfer's raw outputs attached as tensor metadata
            chain += [el.make("nvvideoconvert", "dump-conv", **memory),
                      el.make("capsfilter", "dump-rgba", caps=el.caps(NVMM_CAPS + ", format=RGBA"))]
        chain.append(infer)
        if args.tracker != "none":
            config = os.path.join(self.workdir, "tracker_iou.yml")
            if args.tracker == "iou":
                atomic_write_text(config, iou_tracker_yaml(self.ds))
            else:
                config = self.ds.sample_config("config_tracker_NvDCF_perf.yml")
            chain.append(el.make("nvtracker", "tracker", tracker_width=640, tracker_height=384,
                                 ll_lib_file=self.ds.tracker_lib, ll_config_file=config, gpu_id=args.gpu_id,
                                 display_tracking_id=True))
        analytics_out = chain[-1]
        analytics_tee = None
        if any(s.kind == "msgbroker" for s in self.sinks):
            # the broker takes the analytics before the tiler, which would move every box into its tile: a tee
            # after nvinfer and the tracker, as deepstream-app links its broker sink (add_and_link_broker_sink,
            # deepstream_app.c:635-675 @6.0.1)
            analytics_tee = el.make("tee", "analytics-tee")
            chain.append(analytics_tee)
        if n > 1:
            cols = int(np.ceil(np.sqrt(n)))
            chain.append(el.make("nvmultistreamtiler", "tiler", rows=int(np.ceil(n / float(cols))), columns=cols,
                                 width=TILED[0], height=TILED[1]))
        chain += [el.make("nvvideoconvert", "osd-conv"), el.make("nvdsosd", "osd"), el.make("tee", "tee")]
        for e in chain[1:]:
            pipeline.add(e)
        link_chain(chain)
        tee = chain[-1]
        for j, sink in enumerate(self.sinks):
            elements = self.sink_chain(j, sink)
            for e in elements:
                pipeline.add(e)
            link_chain(elements)
            branch = analytics_tee if sink.kind == "msgbroker" else tee
            if request_pad(branch, "src_%u").link(elements[0].get_static_pad("sink")) != Gst.PadLinkReturn.OK:
                raise BackendUnavailableError("cannot link the tee to sink {}".format(sink.kind))
        # boxes are read before the tiler, which moves them into its tiles
        analytics_out.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self.on_buffer)
        return pipeline

    # --- metadata -------------------------------------------------------------------------------------------------
    def on_buffer(self, pad, info):
        pyds = self.pyds
        buf = info.get_buffer()
        batch = pyds.gst_buffer_get_nvds_batch_meta(hash(buf))
        l_frame = batch.frame_meta_list
        while l_frame is not None:
            frame = pyds.NvDsFrameMeta.cast(l_frame.data)
            self.counter.frame(frame.source_id)
            objects = self.objects(frame)
            if self.args.verbose:
                self.echo("source{} frame {}: {}".format(frame.source_id, frame.frame_num, "; ".join(
                    "{} {:.2f} [{:.0f} {:.0f} {:.0f} {:.0f}]".format(self._label(c), s, *b)
                    for c, s, b, _ in objects) or "-"))
            if self.args.coco_out:
                self.add_coco(frame, objects)
            if self.dump_dir and 0 <= frame.source_id < len(self.dump_left) and self.dump_left[frame.source_id] > 0:
                self.dump(buf, frame)
            l_frame = l_frame.next
        return self.Gst.PadProbeReturn.OK

    def _label(self, c):
        return self.labels[c] if 0 <= c < len(self.labels) else str(c)

    def objects(self, frame):
        """(class id, confidence, [x1, y1, x2, y2] in muxer pixels, tracking id) per object of the frame."""
        out, l_obj = [], frame.obj_meta_list
        while l_obj is not None:
            o = self.pyds.NvDsObjectMeta.cast(l_obj.data)
            r = o.rect_params
            out.append((int(o.class_id), float(o.confidence), [r.left, r.top, r.left + r.width, r.top + r.height],
                        int(o.object_id)))
            l_obj = l_obj.next
        return out

    def add_coco(self, frame, objects):
        files = self.frame_files[frame.source_id] if 0 <= frame.source_id < len(self.frame_files) else None
        if files is None or frame.frame_num >= len(files):
            return
        for c, s, (x1, y1, x2, y2), _ in objects:
            self.coco.append({"image_id": int(frame.frame_num), "category_id": c + 1,
                              "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                              "score": round(s, 5), "file_name": os.path.basename(files[frame.frame_num]),
                              "category_name": self._label(c)})

    def dump(self, buf, frame):
        """One frame as nvinfer received it (RGBA, muxer size) and nvinfer's raw output tensors for it."""
        pyds, sid = self.pyds, frame.source_id
        stem = os.path.join(self.dump_dir, "source{}_frame{:06d}".format(sid, frame.frame_num))
        image = np.array(pyds.get_nvds_buf_surface(hash(buf), frame.batch_id), copy=True, order="C")
        if self.jetson and hasattr(pyds, "unmap_nvds_buf_surface"):
            # "For Jetson, a matching call to unmap_nvds_buf_surface must be made" (pyds 1.1.8 / DeepStream 6.3
            # bindings docs, get_nvds_buf_surface; the call came with deepstream_python_apps v1.1.5): the frame
            # is copied above, so the mapping can go at once
            pyds.unmap_nvds_buf_surface(hash(buf), frame.batch_id)
        tensors, l_user = {}, frame.frame_user_meta_list
        while l_user is not None:
            user = pyds.NvDsUserMeta.cast(l_user.data)
            if user.base_meta.meta_type == pyds.NvDsMetaType.NVDSINFER_TENSOR_OUTPUT_META:
                meta = pyds.NvDsInferTensorMeta.cast(user.user_meta_data)
                for k in range(meta.num_output_layers):
                    layer = pyds.get_nvds_LayerInfo(meta, k)
                    tensors[layer.layerName] = layer_array(pyds, layer)
            l_user = l_user.next
        if not tensors:
            raise InferenceError("nvinfer attached no output tensors to frame {} (output-tensor-meta)".format(
                frame.frame_num))
        np.save(stem + "_rgba.npy", image)
        np.savez(stem + "_outputs.npz", **tensors)
        self.dump_left[sid] -= 1

    # --- running ------------------------------------------------------------------------------------------------
    def run(self, pipeline, GLib):
        loop = GLib.MainLoop()
        bus = pipeline.get_bus()
        bus.add_signal_watch()
        state = {"eos_sent": False}

        def on_message(_, msg):
            if msg.type == self.Gst.MessageType.EOS:
                loop.quit()
            elif msg.type == self.Gst.MessageType.ERROR:
                err, _dbg = msg.parse_error()
                self.error = "{}: {}".format(msg.src.get_name(), err.message)
                loop.quit()

        def on_signal(*_):
            # EOS first, so a file sink finishes its mp4 (moov written); a second Ctrl-C stops at once
            if state["eos_sent"]:
                loop.quit()
            else:
                state["eos_sent"] = True
                self.echo("stopping: sending EOS (Ctrl-C again to stop at once)")
                pipeline.send_event(self.Gst.Event.new_eos())
            return True

        bus.connect("message", on_message)
        handlers = [GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, on_signal) for sig in (signal.SIGINT,
                                                                                        signal.SIGTERM)]
        if pipeline.set_state(self.Gst.State.PLAYING) == self.Gst.StateChangeReturn.FAILURE:
            self.error = self.error or "the pipeline did not start (run with GST_DEBUG=3 for GStreamer's reason)"
        else:
            loop.run()
        pipeline.set_state(self.Gst.State.NULL)
        for h in handlers:
            GLib.source_remove(h)
        if self.error:
            raise InferenceError(self.error)


def layer_array(pyds, layer):
    """An output layer's host buffer as a numpy array of its dims (a copy: the buffer is nvinfer's)."""
    dims = layer.dims
    shape = tuple(int(d) for d in list(dims.d)[:dims.numDims])
    np_type, c_type = LAYER_DTYPES.get(int(layer.dataType), (None, None))
    if np_type is None:
        raise InferenceError("output layer {} has data type {}, not float32/int32".format(layer.layerName,
                                                                                         layer.dataType))
    ptr = ctypes.cast(pyds.get_ptr(layer.buffer), ctypes.POINTER(c_type))
    return np.ctypeslib.as_array(ptr, shape=(int(dims.numElements),)).astype(np_type).reshape(shape)


def get_args_parser(add_help=True):
    p = ArgumentParser(description="Run a bundle in a Python DeepStream pipeline (pyds).", add_help=add_help)
    p.add_argument("bundle", help="the bundle folder export.py wrote")
    add_stream_arguments(p)
    p.add_argument("--dump", nargs=2, metavar=("DIR", "N"),
                   help="save the first N frames per source as nvinfer got them, with its raw outputs")
    p.add_argument("--coco-out", metavar="FILE", help="detections of image-folder sources as COCO results")
    p.add_argument("--verbose", action="store_true", help="print every frame's detections")
    return p


def main(args, Gst=None, GLib=None, pyds=None, elements=None, echo=print):
    bundle = open_checked(args.bundle)
    if not args.source:
        raise UsageError("give at least one --source")
    if args.dump:
        if not args.dump[1].isdigit() or int(args.dump[1]) < 1:
            raise UsageError("--dump DIR N: N must be a whole number >= 1, got {!r}".format(args.dump[1]))
        if os.path.exists(args.dump[0]) and (not os.path.isdir(args.dump[0]) or os.listdir(args.dump[0])):
            raise UsageError("--dump {}: not an empty folder (a dump goes into an empty or new folder)".format(
                args.dump[0]))
    sinks = sinks_from_args(args)
    ds = deepstream_for(args.deepstream_version)
    if args.tracker != "none" or any(s.kind == "msgbroker" for s in sinks):
        if ds is None:
            raise UsageError("DeepStream is not installed here: pass --deepstream-version for the tracker and "
                             "message-broker libraries")
    for s in sinks:
        if s.kind == "msgbroker":
            s.broker.lib = ds.protocol_adaptor(s.broker.scheme)
    workdir = tempfile.mkdtemp(prefix="edgeexport-app-")
    try:
        sources, _ = prepare_sources(args.source, workdir)
        if args.coco_out and not any(s.kind == "images" for s in sources):
            raise UsageError("--coco-out needs an image-folder --source: its file names are the image ids")
        n = len(sources)
        meta = bundle.meta
        if n > meta.batch_size or (not meta.dynamic_batch and n != meta.batch_size):
            raise UsageError("{} sources need an engine of batch {}; this bundle's ONNX has a {} batch of {}: "
                             "re-export it with --batch-size {}".format(
                                 n, n, "dynamic (max)" if meta.dynamic_batch else "static", meta.batch_size, n))
        # once the inputs are known good (it may create an output's folder): no output is a source, a file of
        # the bundle, or inside an image-folder source
        # (the sources as given: an image folder, not the AVI made of it in the work folder)
        outputs = RunOutputs(reads=local_source_paths(args.source), bundle=bundle, echo=echo)
        outputs.file(args.coco_out, "--coco-out")
        for s in sinks:
            if s.kind == "file":
                outputs.file(s.path, "--output-file")
        if args.dump:
            outputs.folder(args.dump[0], "--dump")
        if Gst is None:
            Gst, GLib, pyds = import_gstreamer()
        Gst.init(None)
        app = App(Gst, pyds, elements or Elements(Gst), bundle, sources, sinks, args, ds, workdir, echo)
        if app.dump_dir:
            os.makedirs(app.dump_dir, exist_ok=True)
        pipeline = app.build()
        for s in sources:
            echo("source: {}".format(s.describe()))
        app.run(pipeline, GLib)
        echo("frames: " + ", ".join("source{} {}".format(i, c) for i, c in enumerate(app.counter.total)))
        if args.coco_out:
            outputs.write_text(args.coco_out, json.dumps(app.coco) + "\n")
            echo("COCO results: {} ({} detections)".format(args.coco_out, len(app.coco)))
        for s in sinks:
            if s.kind == "file":
                echo("annotated video: {}".format(s.path))
                outputs.record(s.path)
        outputs.report()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def import_gstreamer():
    try:
        import gi
        gi.require_version("Gst", "1.0")
        from gi.repository import GLib, Gst
    except (ImportError, ValueError) as e:
        raise BackendUnavailableError("GStreamer's Python bindings are missing ({}): sudo apt-get install "
                                      "python3-gi gir1.2-gstreamer-1.0".format(e))
    try:
        import pyds
    except ImportError:
        raise BackendUnavailableError("DeepStream's Python bindings (pyds) are missing: install the pyds wheel of "
                                      "your DeepStream version (NVIDIA-AI-IOT/deepstream_python_apps releases)")
    return Gst, GLib, pyds


def cli(argv=None):
    run_cli(get_args_parser, main, argv)


if __name__ == "__main__":
    cli()
