"""INT8 calibration: images prepared exactly as nvinfer prepares them, fed to TensorRT's entropy calibrator;
the cache it writes is the file DeepStream takes as ``int8-calib-file``.

Device-side (Python 3.6; numpy, OpenCV for image reading and the stretch, tensorrt, pycuda).
"""
import os

import numpy as np

from ..errors import InputFileError
from ..fileio import atomic_write_bytes
from ..preprocess import nvinfer_preprocess

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


class ImageBatcher(object):
    """Batches [B, 3, H, W] float32 of the images in a folder, preprocessed as nvinfer does (BundleMeta)."""

    def __init__(self, folder, meta, batch_size, max_batches=None):
        if not os.path.isdir(folder):
            raise InputFileError("calibration folder not found: {}".format(folder))
        files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTS))
        if len(files) < batch_size:
            raise InputFileError("calibration needs at least {} images in {}, got {}".format(batch_size, folder,
                                                                                           len(files)))
        n = len(files) // batch_size
        if max_batches:
            n = min(n, int(max_batches))
        self.files, self.meta, self.batch_size, self.num_batches = files[:n * batch_size], meta, batch_size, n

    def _load(self, path):
        import cv2
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise InputFileError("cannot read calibration image {}".format(path))
        h, w = self.meta.model.input_size
        return nvinfer_preprocess(img[..., ::-1], w, h, self.meta.offsets, self.meta.net_scale_factor,
                                  self.meta.color_format, 1)[0]

    def __len__(self):
        return self.num_batches

    def __iter__(self):
        for b in range(self.num_batches):
            chunk = self.files[b * self.batch_size:(b + 1) * self.batch_size]
            yield np.ascontiguousarray(np.stack([self._load(p) for p in chunk]), dtype=np.float32)


def make_entropy_calibrator(trt, batcher, cache_path, cuda):
    """An ``IInt8EntropyCalibrator2`` subclass instance (the class is built here so that importing this module
    does not need tensorrt)."""

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = iter(batcher)
            self.ptr, self._owner = cuda.device_alloc(batcher.batch_size * 3 * int(np.prod(
                batcher.meta.model.input_size)) * 4)

        def get_batch_size(self):
            return batcher.batch_size

        def get_batch(self, names):
            try:
                batch = next(self.batches)
            except StopIteration:
                return None
            cuda.htod(self.ptr, batch)
            cuda.synchronize()
            return [self.ptr]

        def read_calibration_cache(self):
            if os.path.isfile(cache_path):
                with open(cache_path, "rb") as f:
                    return f.read()
            return None

        def write_calibration_cache(self, cache):
            atomic_write_bytes(cache_path, bytes(cache))

    return EntropyCalibrator()
