"""Detection datasets returning ``(uint8 HWC RGB numpy image, {"boxes": float32 [N,4] x1y1x2y2 px, "labels": int64 [N] in 1..K})``.

Host-side. Each dataset exposes ``labels`` (the K foreground names) and ``issues`` (bad annotations found).
"""
from .common import AnnotationIssue, BadAnnotationPolicy
from .synthetic import SyntheticShapes, SHAPE_CLASSES
from .voc import VOCDetection
from .coco import COCODetection
from .openimages import OpenImagesDetection

__all__ = ["AnnotationIssue", "BadAnnotationPolicy", "SyntheticShapes", "SHAPE_CLASSES", "VOCDetection",
           "COCODetection", "OpenImagesDetection"]
