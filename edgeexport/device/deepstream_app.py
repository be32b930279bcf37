#!/usr/bin/env python3
"""A minimal Python DeepStream app (pyds) on an edgeexport bundle, for users who prefer Python to deepstream-app.

    python3 jetson/deepstream_app.py BUNDLE VIDEO.mp4 [--out annotated.mp4]

filesrc -> decodebin -> nvstreammux (at the video's size) -> nvinfer (BUNDLE/infer_config.txt) -> nvvideoconvert
-> nvdsosd -> encoder -> mp4 (or fakesink without --out); prints each frame's detections from the metadata.
Needs DeepStream 6.0.1+ with its Python bindings (pyds) and GStreamer's gi bindings; runs on the Jetson only.
Everything it configures comes from the bundle: nvinfer reads infer_config.txt, labels come from labels.txt.
"""
import argparse
import os
import sys


def build_pipeline(Gst, bundle, video, out, width, height):
    def make(factory, name):
        element = Gst.ElementFactory.make(factory, name)
        if element is None:
            raise RuntimeError("GStreamer element {} is missing: is DeepStream installed?".format(factory))
        return element

    pipeline = Gst.Pipeline()
    src, decode = make("filesrc", "src"), make("decodebin", "decode")
    mux, infer = make("nvstreammux", "mux"), make("nvinfer", "infer")
    conv, osd = make("nvvideoconvert", "conv"), make("nvdsosd", "osd")
    src.set_property("location", video)
    mux.set_property("batch-size", 1)
    mux.set_property("width", width)
    mux.set_property("height", height)
    mux.set_property("batched-push-timeout", 40000)
    infer.set_property("config-file-path", os.path.join(bundle, "infer_config.txt"))
    tail = []
    if out:
        conv2, caps = make("nvvideoconvert", "conv2"), make("capsfilter", "caps")
        caps.set_property("caps", Gst.Caps.from_string("video/x-raw, format=I420"))
        enc, parse, mp4, sink = make("x264enc", "enc"), make("h264parse", "parse"), make("qtmux", "mux4"), \
            make("filesink", "sink")
        sink.set_property("location", out)
        tail = [conv2, caps, enc, parse, mp4, sink]
    else:
        sink = make("fakesink", "sink")
        sink.set_property("sync", 0)
        tail = [sink]
    for e in [src, decode, mux, infer, conv, osd] + tail:
        pipeline.add(e)
    src.link(decode)

    def on_pad(_, pad):
        if pad.query_caps(None).to_string().startswith("video/"):
            pad.link(mux.get_request_pad("sink_0"))
    decode.connect("pad-added", on_pad)
    chain = [mux, infer, conv, osd] + tail
    for a, b in zip(chain, chain[1:]):
        a.link(b)
    return pipeline, osd


def main():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("bundle")
    p.add_argument("video")
    p.add_argument("--out", help="annotated mp4 (default: fakesink, for speed)")
    p.add_argument("--size", type=int, nargs=2, default=[1280, 720], metavar=("W", "H"),
                   help="nvstreammux resolution: use the video's own")
    args = p.parse_args()
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import GLib, Gst
    import pyds

    with open(os.path.join(args.bundle, "labels.txt")) as f:
        labels = [line.strip() for line in f if line.strip()]
    Gst.init(None)
    pipeline, osd = build_pipeline(Gst, args.bundle, args.video, args.out, *args.size)

    def on_buffer(pad, info):
        batch = pyds.gst_buffer_get_nvds_batch_meta(hash(info.get_buffer()))
        frames = batch.frame_meta_list
        while frames is not None:
            frame = pyds.NvDsFrameMeta.cast(frames.data)
            objs, found = frame.obj_meta_list, []
            while objs is not None:
                o = pyds.NvDsObjectMeta.cast(objs.data)
                r = o.rect_params
                found.append("{} {:.2f} [{:.0f} {:.0f} {:.0f} {:.0f}]".format(
                    labels[o.class_id] if o.class_id < len(labels) else o.class_id, o.confidence, r.left, r.top,
                    r.left + r.width, r.top + r.height))
                objs = objs.next
            print("frame {}: {}".format(frame.frame_num, "; ".join(found) or "-"))
            frames = frames.next
        return Gst.PadProbeReturn.OK

    osd.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_buffer)
    loop = GLib.MainLoop()
    bus = pipeline.get_bus()
    bus.add_signal_watch()

    def on_message(_, msg):
        if msg.type == Gst.MessageType.EOS:
            loop.quit()
        elif msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            print("error: {} ({})".format(err, dbg), file=sys.stderr)
            loop.quit()
    bus.connect("message", on_message)
    pipeline.set_state(Gst.State.PLAYING)
    try:
        loop.run()
    finally:
        pipeline.set_state(Gst.State.NULL)


if __name__ == "__main__":
    main()
