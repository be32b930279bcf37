"""INT8 calibration: images prepared exactly as nvinfer prepares them, fed to TensorRT's entropy calibrator;
the cache it writes is the file DeepStream takes as ``int8-calib-file``.

TensorRT calls the calibrator back from C++, and what a Python exception does there depends on the version:
on 8.2 ``getBatch`` is ``noexcept`` and calls Python with no try/catch, so an exception is ``std::terminate``
(no message at all; python/src/infer/pyInt8.cpp:39-53 at tag 8.2.1); from 8.4 the bindings print it and treat it
as "no more batches", so calibration silently ends early (pyInt8.cpp:52-77 at tags 8.4.1 ... v10.13.0). So the
callbacks here never raise into TensorRT: they remember the error, return None, and ``raise_if_failed()`` raises
it, one line naming the image, once the build has returned.

A failed calibration leaves no cache. TensorRT takes the None that ``get_batch`` returns after an error as "no more
batches" ("\\return False if there are no more batches for calibration", IInt8Calibrator::getBatch, include/
NvInfer.h:7272 at tag 8.2.1), finishes on the batches it has and calls ``write_calibration_cache``: that call
writes nothing once a callback has failed, and ``discard_cache()`` removes a cache this calibration wrote when the
build fails after it. Otherwise a second run (or ``--int8`` without images) would trust a partial calibration.

A calibration cache is reused only when its record says it was made for the same ONNX (sha256), input size and
batch, from the same images (their sha256); otherwise the calibrator ignores it and TensorRT recalibrates. Batches
reach the GPU through one pinned host buffer (the backends' copies take page-locked memory only).
Device-side (Python 3.6; numpy, OpenCV for image reading (JetPack ships it), tensorrt).
"""
import hashlib
import json
import os

import numpy as np

from ..errors import InputFileError
from ..fileio import atomic_write_bytes, atomic_write_text
from ..preprocess import nvinfer_preprocess

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
CACHE_RECORD_SUFFIX = ".json"


def image_list_digest(files):
    """sha256 over the images' names and contents, in order: "the same calibration images"."""
    h = hashlib.sha256()
    for path in files:
        h.update(os.path.basename(path).encode())
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


class ImageBatcher(object):
    """Batches [B, 3, H, W] float32 of the images in a folder, preprocessed as nvinfer does (BundleMeta)."""

    def __init__(self, folder, meta, batch_size, max_batches=None):
        if not os.path.isdir(folder):
            raise InputFileError("calibration folder not found: {}".format(folder))
        files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTS))
        if len(files) < batch_size:
            raise InputFileError("calibration needs at least {} images ({}) in {}, got {}".format(
                batch_size, ", ".join(IMAGE_EXTS), folder, len(files)))
        n = len(files) // batch_size
        if max_batches:
            n = min(n, int(max_batches))
        self.files, self.meta, self.batch_size, self.num_batches = files[:n * batch_size], meta, batch_size, n
        self.digest = image_list_digest(self.files)

    def load(self, path):
        """One image as nvinfer feeds it; InputFileError naming the file when it is not a readable image."""
        import cv2
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise InputFileError("cannot read calibration image {}: not an image OpenCV can decode".format(path))
        h, w = self.meta.model.input_size
        return nvinfer_preprocess(img[..., ::-1], w, h, self.meta.offsets, self.meta.net_scale_factor,
                                  self.meta.color_format, 1)[0]

    def __len__(self):
        return self.num_batches

    def __iter__(self):
        for b in range(self.num_batches):
            chunk = self.files[b * self.batch_size:(b + 1) * self.batch_size]
            yield np.ascontiguousarray(np.stack([self.load(p) for p in chunk]), dtype=np.float32)


class CacheOnly(object):
    """INT8 from an existing cache alone: TensorRT reads the cache and asks for no batch."""

    digest = None

    def __init__(self, meta, batch_size):
        self.meta, self.batch_size, self.num_batches = meta, batch_size, 0

    def __iter__(self):
        return iter(())


def cache_identity(onnx_sha256, meta, batcher):
    h, w = meta.model.input_size
    return {"onnx_sha256": onnx_sha256, "input_size": [h, w], "batch_size": batcher.batch_size,
            "offsets": meta.offsets, "color_format": meta.color_format, "images_sha256": batcher.digest}


def cache_matches(cache_path, identity):
    """The cache at ``cache_path`` was made for ``identity`` (an images digest of None accepts any images)."""
    try:
        with open(cache_path + CACHE_RECORD_SUFFIX) as f:
            record = json.load(f)
    except Exception:  # no record, or not one: not a cache to trust
        return False
    if not isinstance(record, dict) or not os.path.isfile(cache_path):
        return False
    keys = [k for k in identity if not (k == "images_sha256" and identity[k] is None)]
    return all(record.get(k) == identity[k] for k in keys)


def make_entropy_calibrator(trt, batcher, cache_path, cuda, identity):
    """An ``IInt8EntropyCalibrator2`` subclass instance (the class is built here so that importing this module
    does not need tensorrt). Its callbacks never raise into TensorRT; call ``raise_if_failed()`` after the build."""

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = iter(batcher)
            self.error, self.batches_given, self.wrote_cache = None, 0, False
            h, w = batcher.meta.model.input_size
            self.host = cuda.pinned_empty(batcher.batch_size * 3 * h * w, np.float32)
            self.ptr, self._owner = cuda.device_alloc(self.host.nbytes)

        def get_batch_size(self):
            return batcher.batch_size

        def get_batch(self, names):
            if self.error is not None:
                return None
            try:
                batch = next(self.batches)
                self.host[:] = batch.ravel()
                cuda.htod(self.ptr, self.host)
                cuda.synchronize()
            except StopIteration:
                return None
            except BaseException as e:  # never into TensorRT (see the module's docstring): kept for after
                self.error = e
                return None
            self.batches_given += 1
            return [self.ptr]

        def read_calibration_cache(self):
            try:
                if cache_matches(cache_path, identity):
                    with open(cache_path, "rb") as f:
                        return f.read()
            except BaseException as e:
                self.error = e
            return None

        def write_calibration_cache(self, cache):
            if self.error is not None:  # a calibration cut short by an error: nothing to keep
                return
            try:
                atomic_write_bytes(cache_path, bytes(cache))
                atomic_write_text(cache_path + CACHE_RECORD_SUFFIX, json.dumps(identity, indent=1) + "\n")
                self.wrote_cache = True
            except BaseException as e:
                self.error = e

        def discard_cache(self):
            """The build failed after calibrating: the cache this calibration wrote (and its record) goes."""
            if self.wrote_cache:
                for path in (cache_path + CACHE_RECORD_SUFFIX, cache_path):
                    if os.path.exists(path):
                        os.unlink(path)
                self.wrote_cache = False

        def raise_if_failed(self):
            if self.error is None:
                return
            if isinstance(self.error, (InputFileError, KeyboardInterrupt)):
                raise self.error
            raise InputFileError("INT8 calibration failed: {}: {}".format(type(self.error).__name__, self.error))

        def release(self):
            cuda.free(self._owner)
            cuda.pinned_free(self.host)

    return EntropyCalibrator()
