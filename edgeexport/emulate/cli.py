"""Run a bundle the way DeepStream would, on this host: ``python -m edgeexport.emulate BUNDLE --input clip.mp4
--out annotated.mp4 --json detections.json`` (also ``edgeexport-emulate``). See edgeexport.emulate.nvinfer."""
import contextlib
import json
import os
import sys
import time

from ..device.cli import ArgumentParser, int_range, non_negative_int, positive_int, run_cli
from ..device.outputs import RunOutputs


def get_args_parser(add_help=True):
    p = ArgumentParser(description="Emulate the DeepStream pipeline of a bundle on this host.", add_help=add_help)
    p.add_argument("bundle")
    p.add_argument("--input", required=True, help="a video file, a folder of images, or a glob")
    p.add_argument("--out", help="annotated video to write (.mp4)")
    p.add_argument("--json", help="per-frame detections to write")
    p.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "tensorrt"])
    p.add_argument("--max-frames", type=non_negative_int, default=0, help="stop after N frames (0: all)")
    p.add_argument("--fps", type=int_range(1, 240), default=15, help="frame rate of the annotated video")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--deepstream-version", metavar="X.Y[.Z]",
                   help="the nvinfer to emulate where versions differ (6.3+ clamps boxes' left/top at 0; default: "
                        "the DeepStream installed here, else 6.0.1)")
    g = p.add_argument_group("metadata to a broker, as DeepStream's nvmsgconv + nvmsgbroker send it")
    g.add_argument("--publish", metavar="URL", help="mqtt://HOST:PORT/TOPIC")
    g.add_argument("--payload", default="full", choices=["full", "minimal"],
                   help="full: one message per object; minimal: one per frame (msg-conv-payload-type 0 / 1)")
    g.add_argument("--msg-interval", type=positive_int, default=30,
                   help="every Nth frame, as nvmsgconv's frame-interval (deepstream-app's default 30)")
    return p


def main(args):
    from ..device.bundle import Bundle
    # the input (a clip, an image folder, a camera) and the bundle's own files are never an output
    outputs = RunOutputs(reads=[args.input], bundle=Bundle(args.bundle) if os.path.isdir(args.bundle) else None)
    outputs.file(args.out, "--out")
    outputs.file(args.json, "--json")
    from .nvinfer import Emulator
    from .video import VideoOut
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        publisher = None
        if args.publish:
            from .publish import Publisher
            publisher = stack.enter_context(Publisher(args.publish, args.payload, args.msg_interval, args.bundle,
                                                      args.input))
        version = None
        if args.deepstream_version:
            from ..device.deepstream.install import parse_version
            version = parse_version(args.deepstream_version)
        emu = stack.enter_context(Emulator(args.bundle, args.backend, version))
        notice = emu.bundle.checked.notice()
        if notice:
            print(notice, file=sys.stderr)
        video = stack.enter_context(VideoOut(args.out, args.fps)) if args.out else None
        frames_json = _run(args, emu, video, publisher)
    return _report(args, outputs, frames_json, emu.infer_seconds, video, time.perf_counter() - t0, publisher,
                   emu.cfg.deepstream_version)


def _run(args, emu, video, publisher):
    """Detections per frame (as JSON-ready dicts); frames drawn into ``video`` and sent to ``publisher``."""
    from tqdm import tqdm

    from ..data.frames import iter_frames
    from ..device.deepstream.msgconv import Detection
    from .video import draw
    frames_json = []
    for i, frame in tqdm(iter_frames(args.input), desc="emulate", unit="frame", disable=args.no_progress or None):
        if args.max_frames and i >= args.max_frames:
            break
        dets = emu.detect(frame)
        frames_json.append({"frame": i, "objects": dets.to_list(emu.cfg.labels)})
        if publisher is not None:
            publisher.frame(i, [Detection.from_box(b, emu.cfg.labels[int(c)], s)
                                for b, s, c in zip(dets.boxes, dets.scores, dets.classes)])
        if video is not None:
            video.write(draw(frame, dets, emu.cfg.labels))
    return frames_json


def _report(args, outputs, frames_json, infer_s, video, wall, publisher, deepstream_version):
    n = len(frames_json)
    summary = {"frames": n, "fps_end_to_end": n / wall if wall else 0.0,
               "fps_inference_only": n / infer_s if infer_s else 0.0, "backend": args.backend,
               "detections": sum(len(f["objects"]) for f in frames_json),
               "deepstream_version": ".".join(str(v) for v in deepstream_version)}
    if args.json:
        outputs.write_text(args.json, json.dumps({"summary": summary, "frames": frames_json}, indent=1) + "\n")
    print("emulated {frames} frames with {backend} (nvinfer of DeepStream {deepstream_version}): {fps_end_to_end:.1f} "
          "FPS end to end, {fps_inference_only:.1f} FPS inference only, {detections} detections".format(**summary))
    if args.out:
        print("annotated video: {} ({} frames)".format(args.out, video.frames))
        outputs.record(args.out)
    outputs.report()
    if publisher is not None:
        print("published {} messages ({} payload, every {}th frame) to {}".format(
            publisher.sent, args.payload, args.msg_interval, args.publish))
    return 0


def cli(argv=None):
    run_cli(get_args_parser, main, argv)
