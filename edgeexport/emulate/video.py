"""Annotated frames out: boxes drawn, an mp4 written atomically. (Frames in: edgeexport.data.frames.)
Host-side (numpy, OpenCV)."""
import numpy as np

from ..device.errors import InputFileError
from ..data.frames import opencv
from ..device.fileio import atomic_output_path

PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230)]


def draw(frame_rgb, dets, labels):
    """The frame (BGR, for OpenCV's writer) with each detection's box and "label score"."""
    cv2 = opencv()
    img = np.ascontiguousarray(frame_rgb[..., ::-1])
    for b, s, c in zip(dets.boxes, dets.scores, dets.classes):
        color = PALETTE[int(c) % len(PALETTE)][::-1]
        x1, y1, x2, y2 = [int(round(v)) for v in b]
        cv2.rectangle(img, (x1, y1), (x2, y2), color, 2)
        text = "{} {:.2f}".format(labels[int(c)] if int(c) < len(labels) else int(c), float(s))
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(img, (x1, max(0, y1 - th - 4)), (x1 + tw + 2, max(th + 4, y1)), color, -1)
        cv2.putText(img, text, (x1 + 1, max(th + 1, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return img


class VideoOut(object):
    """``with VideoOut(path, fps) as out: out.write(bgr)``: an mp4 that appears whole at ``path`` on success and
    not at all on failure (written to a temporary beside it, then renamed)."""

    def __init__(self, path, fps=15):
        self.path, self.fps, self.writer, self.frames = path, fps, None, 0

    def __enter__(self):
        self._atomic = atomic_output_path(self.path)
        self.tmp = self._atomic.__enter__()
        return self

    def write(self, frame_bgr):
        cv2 = opencv()
        if self.writer is None:
            h, w = frame_bgr.shape[:2]
            self.writer = cv2.VideoWriter(self.tmp, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise InputFileError("OpenCV cannot write an mp4 at {}".format(self.path))
        self.writer.write(frame_bgr)
        self.frames += 1

    def __exit__(self, exc_type, exc, tb):
        if self.writer is not None:
            self.writer.release()
        return self._atomic.__exit__(exc_type, exc, tb)
