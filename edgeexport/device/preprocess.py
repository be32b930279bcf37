"""nvinfer's preprocessing on the host: stretch to the network size in 8 bits, colour order, offsets, scale.

``y = net-scale-factor * (x - offsets[c])`` on the 8-bit pixels its scaler hands over (maintain-aspect-ratio=0).
Device-side safe (Python 3.6; numpy, and OpenCV for resizing, imported on first use).
"""
import numpy as np

# nvinfer scaling-filter -> OpenCV interpolation (0 nearest is nvinfer's default, 1 bilinear is ours).
_CV_INTERPOLATION = {0: "INTER_NEAREST", 1: "INTER_LINEAR"}


def stretch_to_network(frame_rgb, net_w, net_h, scaling_filter=1):
    """uint8 [H, W, 3] frame -> uint8 [net_h, net_w, 3], aspect ratio not kept (nvinfer's maintain-aspect-ratio=0)."""
    import cv2
    frame = np.asarray(frame_rgb)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError("frame must be uint8 [H, W, 3], got {} {}".format(frame.dtype, frame.shape))
    if scaling_filter not in _CV_INTERPOLATION:
        raise ValueError("scaling-filter {} is not emulated; use 0 (nearest) or 1 (bilinear)".format(scaling_filter))
    if frame.shape[:2] == (net_h, net_w):
        return frame.copy()
    return cv2.resize(frame, (int(net_w), int(net_h)), interpolation=getattr(cv2, _CV_INTERPOLATION[scaling_filter]))


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
    """One full-size RGB frame -> float32 [1, 3, net_h, net_w], as nvinfer prepares it."""
    small = stretch_to_network(frame_rgb, net_w, net_h, scaling_filter)
    return network_input_from_8bit(small, offsets, net_scale_factor, color_format)
