"""Generate a short video of moving synthetic shapes (the demo's and the tests' stand-in for a camera clip).

    python -m edgeexport.emulate.make_clip clip.mp4 --seconds 6 --classes circle square triangle

Also writes ``<clip>.json``: the exact boxes and labels of every frame. Host-side (numpy, OpenCV).
"""
import json
import os

import numpy as np

from ..data.synthetic import SHAPE_CLASSES, _background, draw_shape
from ..device.cli import MAX_IMAGE_SIDE, ArgumentParser, int_range, run_cli, seed
from ..device.fileio import atomic_write_text
from ..device.outputs import RunOutputs
from .video import VideoOut


def render_clip(path, seconds=6.0, fps=15, width=480, height=480, classes=("circle", "square", "triangle"), seed=7):
    """Write the clip (mp4, atomically) and its ground truth beside it; returns ``path``."""
    rng = np.random.default_rng(seed)
    bg = _background(rng, height, width)
    objects = []
    for i, name in enumerate(classes):
        r = rng.uniform(0.13, 0.2) * min(width, height)
        objects.append({"label": name, "class_id": i, "r": r,
                        "pos": np.array([rng.uniform(r, width - r), rng.uniform(r, height - r)]),
                        "vel": rng.uniform(-1, 1, 2) * min(width, height) / (2.5 * fps),
                        "color": [int(c) for c in rng.integers(0, 256, 3)], "angle": rng.uniform(0, 6.28)})
    truth = []
    with VideoOut(path, fps) as out:
        for f in range(max(1, int(round(seconds * fps)))):
            frame = bg.copy()
            boxes = []
            for o in objects:
                for axis, limit in ((0, width), (1, height)):  # bounce off the borders
                    if not o["r"] <= o["pos"][axis] + o["vel"][axis] <= limit - o["r"]:
                        o["vel"][axis] *= -1
                o["pos"] = o["pos"] + o["vel"]
                o["angle"] += 0.03
                bg_px = frame[int(o["pos"][1]), int(o["pos"][0])].astype(int)
                color = o["color"] if np.abs(np.array(o["color"]) - bg_px).sum() >= 120 else (255 - bg_px).tolist()
                box = draw_shape(frame, o["label"], o["pos"][0], o["pos"][1], o["r"], o["angle"], color)
                boxes.append({"label": o["label"], "class_id": o["class_id"], "box": [round(v, 2) for v in box]})
            out.write(frame[..., ::-1])  # OpenCV writes BGR
            truth.append({"frame": f, "objects": boxes})
    atomic_write_text(os.path.splitext(path)[0] + ".json", json.dumps(
        {"written_by": GROUND_TRUTH_WRITER, "width": width, "height": height, "fps": fps, "frames": truth}) + "\n")
    return path


MIN_SIDE = 64


# A clip to try a pipeline on: up to an hour, up to 240 fps, and (what decides the work: frames drawn and encoded)
# at most MAX_FRAMES frames; the size as the trainer's images (MAX_IMAGE_SIDE).
MAX_SECONDS, MAX_FPS, MAX_FRAMES = 3600, 240, 36000
GROUND_TRUTH_WRITER = "edgeexport.emulate.make_clip"


def is_ground_truth(path):
    """True for a clip's ground truth this command wrote (earlier versions: without written_by, these keys)."""
    try:
        with open(path) as f:
            d = json.load(f)
    except Exception:  # by design: what is not readable JSON is not ours
        return False
    return isinstance(d, dict) and (d.get("written_by") == GROUND_TRUTH_WRITER or
                                    set(d) == {"width", "height", "fps", "frames"})
_frame_side = int_range(MIN_SIDE, MAX_IMAGE_SIDE, "an integer from {} to {} (pixels)".format(MIN_SIDE, MAX_IMAGE_SIDE))


def get_args_parser(add_help=True):
    p = ArgumentParser(description="Generate a clip of moving synthetic shapes.", add_help=add_help)
    p.add_argument("output", help="the .mp4 to write (ground truth goes beside it as .json)")
    p.add_argument("--seconds", type=_seconds, default=6.0, help="at most {}".format(MAX_SECONDS))
    p.add_argument("--fps", type=int_range(1, MAX_FPS), default=15)
    p.add_argument("--size", type=_frame_side, nargs=2, default=[480, 480], metavar=("W", "H"),
                   help="at least {} pixels a side (the shapes need room to move)".format(MIN_SIDE))
    p.add_argument("--classes", nargs="+", default=["circle", "square", "triangle"], choices=SHAPE_CLASSES)
    p.add_argument("--seed", type=seed, default=7)
    return p


def _seconds(text):
    from ..device.cli import _bounded
    return _bounded(float, 0.0, MAX_SECONDS, low_open=True, what="seconds, more than 0 and at most {}".format(
        MAX_SECONDS))(text)


def main(args):
    frames = int(round(args.seconds * args.fps))
    if frames > MAX_FRAMES:  # the work, estimated before it starts
        from ..device.errors import UsageError
        raise UsageError("--seconds {} at --fps {} is {} frames; a test clip has at most {}: shorten it or lower "
                         "--fps".format(args.seconds, args.fps, frames, MAX_FRAMES))
    truth = os.path.splitext(args.output)[0] + ".json"
    if os.path.splitext(args.output)[1].lower() == ".json":
        from ..device.errors import UsageError
        raise UsageError("{}: the clip is a video (.mp4); its ground truth goes beside it as .json".format(args.output))
    if os.path.exists(truth) and not is_ground_truth(truth):
        from ..device.errors import OutputExistsError
        raise OutputExistsError("{} exists and is not a clip's ground truth written by make_clip: it would be "
                                "overwritten; name the clip elsewhere".format(truth))
    outputs = RunOutputs()
    outputs.file(args.output, "the clip")
    outputs.file(truth, "its ground truth")
    render_clip(args.output, args.seconds, args.fps, args.size[0], args.size[1], args.classes, args.seed)
    print("clip: {} ({} s at {} fps, {}x{})".format(args.output, args.seconds, args.fps, *args.size))
    outputs.record(args.output)
    outputs.record(truth)
    outputs.report()
    return 0


def cli(argv=None):
    run_cli(get_args_parser, main, argv)


if __name__ == "__main__":
    cli()
