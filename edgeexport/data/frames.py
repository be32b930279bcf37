"""Frames in: a video file, or a folder or glob of images, as uint8 RGB arrays. Host-side (numpy, OpenCV)."""
import glob
import os

from ..device.errors import InputFileError


def opencv():
    """cv2, with FFmpeg's own log silenced: it prints to the process's stderr (e.g. "moov atom not found" for a
    file that is not a video) beside the one error line the command gives."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    import cv2
    return cv2


IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def image_files(source):
    """The image files of a folder or a glob, sorted; InputFileError when there are none."""
    files = sorted(glob.glob(os.path.join(source, "*") if os.path.isdir(source) else source))
    files = [f for f in files if f.lower().endswith(IMAGE_EXTS) and os.path.isfile(f)]
    if not files:
        raise InputFileError("no images ({}) in {}".format(", ".join(IMAGE_EXTS), source))
    return files


def read_image(path):
    """uint8 RGB HWC; InputFileError naming the file when it is not an image OpenCV can decode."""
    cv2 = opencv()
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise InputFileError("cannot read image {}: not an image file, or damaged".format(path))
    return img[..., ::-1].copy()


def iter_frames(source):
    """(index, RGB uint8 frame) from a video file, or from a folder / glob of images."""
    cv2 = opencv()
    if os.path.isdir(source) or any(ch in source for ch in "*?["):
        for i, f in enumerate(image_files(source)):
            yield i, read_image(f)
        return
    if not os.path.isfile(source):
        raise InputFileError("input not found: {}".format(source))
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise InputFileError("cannot open video {}: not a video, or a codec this machine lacks".format(source))
    i = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield i, frame[..., ::-1].copy()
            i += 1
    finally:
        cap.release()
    if i == 0:
        raise InputFileError("no frames could be decoded from {}: not a video, or damaged".format(source))


def video_frame_size(video):
    """(width, height) of the first frame of ``video``; InputFileError when it cannot be decoded."""
    if not os.path.isfile(video):
        raise InputFileError("video not found: {}".format(video))
    cap = opencv().VideoCapture(video)
    ok, frame = cap.read()
    cap.release()
    if not ok or frame is None:
        raise InputFileError("{} is not a video this machine can decode (no frame could be read)".format(video))
    return int(frame.shape[1]), int(frame.shape[0])
