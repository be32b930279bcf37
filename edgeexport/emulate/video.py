"""Annotated frames out: boxes drawn, an mp4 written atomically. (Frames in: edgeexport.data.frames.)
Host-side (numpy, OpenCV)."""
import numpy as np

from ..device.errors import BackendUnavailableError, InputFileError
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
    """``with VideoOut(path, fps) as out: out.write(bgr)``: an H.264 mp4 (every DeepStream decoder takes H.264;
    OpenCV's wheels write MPEG-4 Part 2 only) that appears whole at ``path`` on success and not at all on failure
    (written to a temporary beside it, then renamed). Encoded by the ffmpeg build of imageio-ffmpeg (libx264,
    yuv420p, moov atom first); an odd width or height is padded by one pixel right or bottom, as yuv420p needs."""

    def __init__(self, path, fps=15):
        self.path, self.fps, self.proc, self.frames = path, fps, None, 0

    def __enter__(self):
        self._atomic = atomic_output_path(self.path)
        self.tmp = self._atomic.__enter__()
        return self

    def _start(self, w, h):
        import subprocess
        try:
            import imageio_ffmpeg
            exe = imageio_ffmpeg.get_ffmpeg_exe()
        except (ImportError, RuntimeError) as e:
            raise BackendUnavailableError("writing H.264 needs imageio-ffmpeg (pip install imageio-ffmpeg): "
                                          "{}".format(e))
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
               "-s", "{}x{}".format(w, h), "-r", str(self.fps), "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
               "-movflags", "+faststart", "-f", "mp4", self.tmp]
        self.size = (w, h)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def write(self, frame_bgr):
        h, w = frame_bgr.shape[:2]
        if self.proc is None:
            self._start(w, h)
        if (w, h) != self.size:
            raise InputFileError("frame {} is {}x{}, the video {}x{}".format(self.frames, w, h, *self.size))
        try:
            self.proc.stdin.write(np.ascontiguousarray(frame_bgr, np.uint8).tobytes())
        except BrokenPipeError:
            raise InputFileError("the H.264 encoder stopped: {}".format(self._stderr()))
        self.frames += 1

    def _stderr(self):
        return (self.proc.stderr.read().decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]

    def __exit__(self, exc_type, exc, tb):
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            if exc_type is not None:
                self.proc.kill()
            rc = self.proc.wait()
            if rc != 0 and exc_type is None:
                self._atomic.__exit__(RuntimeError, None, None)  # discard the temporary
                raise InputFileError("the H.264 encoder failed writing {}: {}".format(self.path, self._stderr()))
        return self._atomic.__exit__(exc_type, exc, tb)
