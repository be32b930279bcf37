"""Run a bundle the way DeepStream would, on this host: ``python -m edgeexport.emulate BUNDLE --input clip.mp4
--out annotated.mp4 --json detections.json`` (also ``edgeexport-emulate``). See edgeexport.emulate.nvinfer."""
import json
import os
import time

from ..device.cli import ArgumentParser, non_negative_int, positive_int, run_cli
from ..device.fileio import atomic_write_text, check_output_file, remove_stale_temporaries


def get_args_parser(add_help=True):
    p = ArgumentParser(description="Emulate the DeepStream pipeline of a bundle on this host.", add_help=add_help)
    p.add_argument("bundle")
    p.add_argument("--input", required=True, help="a video file, a folder of images, or a glob")
    p.add_argument("--out", help="annotated video to write (.mp4)")
    p.add_argument("--json", help="per-frame detections to write")
    p.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "tensorrt"])
    p.add_argument("--max-frames", type=non_negative_int, default=0, help="stop after N frames (0: all)")
    p.add_argument("--fps", type=positive_int, default=15, help="frame rate of the annotated video")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(args):
    from tqdm import tqdm
    from .nvinfer import Emulator
    from ..data.frames import iter_frames
    from .video import VideoOut, draw
    for out in (args.out, args.json):
        if out is not None:
            check_output_file(out, inputs=[args.input])
            remove_stale_temporaries(os.path.dirname(os.path.abspath(out)), [os.path.basename(out)])
    if args.out and args.json and os.path.abspath(args.out) == os.path.abspath(args.json):
        from ..device.errors import UsageError
        raise UsageError("--out and --json name the same file {}".format(args.out))
    frames_json = []
    t0 = time.perf_counter()
    video = VideoOut(args.out, args.fps) if args.out else None
    with Emulator(args.bundle, args.backend) as emu:
        if video is not None:
            video.__enter__()
        try:
            for i, frame in tqdm(iter_frames(args.input), desc="emulate", unit="frame",
                                 disable=args.no_progress or None):
                if args.max_frames and i >= args.max_frames:
                    break
                dets = emu.detect(frame)
                frames_json.append({"frame": i, "objects": dets.to_list(emu.cfg.labels)})
                if video is not None:
                    video.write(draw(frame, dets, emu.cfg.labels))
        except BaseException as e:
            if video is not None:
                video.__exit__(type(e), e, None)
            raise
        if video is not None:
            video.__exit__(None, None, None)
        infer_s = emu.infer_seconds
    n = len(frames_json)
    wall = time.perf_counter() - t0
    summary = {"frames": n, "fps_end_to_end": n / wall if wall else 0.0,
               "fps_inference_only": n / infer_s if infer_s else 0.0, "backend": args.backend,
               "detections": sum(len(f["objects"]) for f in frames_json)}
    if args.json:
        atomic_write_text(args.json, json.dumps({"summary": summary, "frames": frames_json}, indent=1) + "\n")
    print("emulated {frames} frames with {backend}: {fps_end_to_end:.1f} FPS end to end, {fps_inference_only:.1f} "
          "FPS inference only, {detections} detections".format(**summary))
    if args.out:
        print("annotated video: {} ({} frames)".format(args.out, video.frames))
    return 0


def cli(argv=None):
    run_cli(get_args_parser, main, argv)
