"""nvinfer's preprocessing on the host: crop to even size, scale into the network input in 8 bits (stretched, or
with the aspect ratio kept and padded), colour order, offsets, scale.

``y = net-scale-factor * (x - offsets[c])`` on the 8-bit pixels its scaler hands over. Source: DeepStream 6.0.1
sources/gst-plugins/gst-nvinfer/gstnvinfer.cpp, get_converted_buffer (:1054-1208), the same in 6.3.
Device-side safe (Python 3.6; numpy, and OpenCV for resizing, imported on first use).
"""
import numpy as np

from .postprocess import FrameScale

# nvinfer's scaling-filter (NvBufSurfTransform_Inter, nvbufsurftransform.h:76-91 @6.0.1; every value 0-6 is accepted,
# gstnvinfer_property_parser.cpp:455-472) -> the nearest OpenCV interpolation. The header names what the GPU does:
# 0 nearest, 1 bilinear, 2 "GPU-Cubic", 3 "GPU-Super", 4 "GPU-Lanzos", 5 "GPU-Ignored", 6 (the default,
# gstnvinfer.cpp:388) "GPU-Nearest". OpenCV's kernels are close to, not bit-equal with, the GPU's: the on-board
# check of this step is `parity --dump`. 5 is taken as nearest, like the default (the header gives no GPU kernel).
SCALING_FILTERS = {0: "INTER_NEAREST", 1: "INTER_LINEAR", 2: "INTER_CUBIC", 3: "INTER_AREA", 4: "INTER_LANCZOS4",
                   5: "INTER_NEAREST", 6: "INTER_NEAREST"}
DEFAULT_SCALING_FILTER = 6


def _resize(image, width, height, scaling_filter):
    import cv2
    if scaling_filter not in SCALING_FILTERS:
        raise ValueError("scaling-filter must be one of {} (nvinfer's values), got {!r}".format(
            sorted(SCALING_FILTERS), scaling_filter))
    if image.shape[:2] == (height, width):
        return image.copy()
    return cv2.resize(image, (int(width), int(height)), interpolation=getattr(cv2, SCALING_FILTERS[scaling_filter]))


def _check_frame(frame):
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError("frame must be uint8 [H, W, 3], got {} {}".format(frame.dtype, frame.shape))
    return frame


def scale_frame(frame_rgb, net_w, net_h, scaling_filter=1, maintain_aspect_ratio=False, symmetric_padding=False):
    """One uint8 [H, W, 3] frame -> (uint8 [net_h, net_w, 3], FrameScale), as nvinfer scales a full frame:

    - the source rectangle is rounded to even size (GST_ROUND_DOWN_2 of width and height, from the top-left
      corner): an odd-sized frame loses its last column or row;
    - maintain-aspect-ratio=0 stretches it to the network size; =1 scales it to fit, the size truncated to whole
      pixels, and pads with zeros right and bottom, or on both sides with symmetric-padding=1 (offsets = half the
      padding, rounded down);
    - the ratios network/source are what nvinfer divides boxes by afterwards.
    """
    frame = _check_frame(frame_rgb)
    frame_h = frame.shape[0]
    src_w, src_h = frame.shape[1] & ~1, frame.shape[0] & ~1
    if src_w == 0 or src_h == 0:
        raise ValueError("frame is {}x{}: nvinfer needs at least 2x2".format(frame.shape[1], frame.shape[0]))
    src = frame[:src_h, :src_w]
    if not maintain_aspect_ratio:
        return _resize(src, net_w, net_h, scaling_filter), FrameScale(net_w / float(src_w), net_h / float(src_h), 0, 0,
                                                                      frame_h)
    hdest = net_w * src_h / float(src_w)
    if hdest <= net_h:
        dest_w, dest_h = int(net_w), int(hdest)
    else:
        dest_w, dest_h = int(net_h * src_w / float(src_h)), int(net_h)
    left = (net_w - dest_w) // 2 if symmetric_padding else 0
    top = (net_h - dest_h) // 2 if symmetric_padding else 0
    out = np.zeros((int(net_h), int(net_w), 3), np.uint8)
    out[top:top + dest_h, left:left + dest_w] = _resize(src, dest_w, dest_h, scaling_filter)
    return out, FrameScale(dest_w / float(src_w), dest_h / float(src_h), left, top, frame_h)


def stretch_to_network(frame_rgb, net_w, net_h, scaling_filter=1):
    """uint8 [H, W, 3] frame -> uint8 [net_h, net_w, 3], aspect ratio not kept (nvinfer's maintain-aspect-ratio=0)."""
    return scale_frame(frame_rgb, net_w, net_h, scaling_filter)[0]


def network_input_from_8bit(images_rgb, offsets, net_scale_factor=1.0, color_format="rgb"):
    """[B, H, W, 3] (or [H, W, 3]) uint8 network-size RGB -> float32 [B, 3, H, W] graph input."""
    x = np.asarray(images_rgb)
    if x.ndim == 3:
        x = x[None]
    if color_format == "bgr":
        x = x[..., ::-1]
    off = np.asarray(offsets, np.float32).reshape(1, 1, 1, 3)
    y = (x.astype(np.float32) - off) * np.float32(net_scale_factor)
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2))


def nvinfer_preprocess(frame_rgb, net_w, net_h, offsets, net_scale_factor=1.0, color_format="rgb", scaling_filter=1):
    """One full-size RGB frame -> float32 [1, 3, net_h, net_w], as nvinfer prepares it (stretched)."""
    small = stretch_to_network(frame_rgb, net_w, net_h, scaling_filter)
    return network_input_from_8bit(small, offsets, net_scale_factor, color_format)
