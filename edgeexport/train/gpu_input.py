"""JPEG datasets decoded on the GPU (``--decode gpu``): loader workers only read the file's bytes and draw each
sample's augmentation (SSD's IoU crop and flip, edgeexport.train.ssd_crop) from the boxes and the image size in the
header; the main process decodes the batch with nvJPEG (torchvision.io.decode_jpeg on CUDA), then crops, resizes
and flips the whole batch in a few kernels. The CPU never touches a pixel.
"""
import time

import numpy as np
import torch

from ..device.errors import DatasetError
from .decoded_crops import FileSamples
from .transforms import BadSample

JPEG_SUFFIXES = (".jpg", ".jpeg")


class EncodedDetection(FileSamples):
    """A file-backed dataset (``items``: (path, boxes, labels)) as encoded JPEG bytes, the drawn crop and flip, and
    the boxes already in the network's ``size`` (H, W)."""

    def __init__(self, dataset, preset, size, seed=0):
        super(EncodedDetection, self).__init__(dataset, preset, size, seed, "--decode gpu")
        bad = [p for p, _, _ in self.items if not p.lower().endswith(JPEG_SUFFIXES)]
        if bad:
            raise DatasetError("--decode gpu decodes JPEG only; {} (and {} more) is not: decode on the CPU".format(
                bad[0], len(bad) - 1))

    def __getitem__(self, index):
        from ..data.common import image_size
        path = self.items[self.locate(index)[1]][0]
        try:
            data = np.fromfile(path, np.uint8)
            w, h = image_size(path)
        except Exception as e:  # by design: whatever cannot be read is "not an image" for this sample
            return BadSample("cannot read image {}: {}".format(path, e))
        crop, flip, target = self.augment(index, w, h)
        return torch.from_numpy(data), torch.tensor(crop), flip, target


def collate_encoded(batch):
    """Samples -> (the batch's JPEG files end to end as one uint8 tensor, where each file ends [B], crops [B, 4],
    flips [B], boxes, labels, valid). One tensor for all the bytes: a worker hands each tensor of a batch to the
    main process as a shared-memory segment of its own, and 256 of them per batch (one per file) held 14 workers
    on an H200 to 2,067 img/s in all, below one worker's 2,690 (benchmarks/results/h200_jpeg_log.txt, a1)."""
    from .ssd_loss import pad_targets
    bad = [b for b in batch if isinstance(b, BadSample)]
    if bad:
        return bad[0]
    data, crops, flips, targets = zip(*batch)
    ends = torch.tensor([len(d) for d in data], dtype=torch.int64).cumsum(0)
    return (torch.cat(data), ends, torch.stack(crops), torch.tensor(flips)) + pad_targets(list(targets))


def split_encoded(data, ends):
    """The files of a collated batch as views of its one byte tensor (what decode_jpeg takes: 1-D, contiguous)."""
    return list(torch.split(data, torch.diff(ends, prepend=ends.new_zeros(1)).tolist()))


def decode_jpegs(data, device):
    """nvJPEG decode of a batch (torchvision.io.decode_jpeg on CUDA): [3, H, W] uint8 images on ``device``.

    torchvision's CUDA decoder allocates its outputs while the caller's stream is current, then writes them from a
    stream of its own that does not wait for the caller's (torchvision/csrc/io/image/cuda/decode_jpegs_cuda.cpp:
    prepare_buffers' torch::empty, then nvjpegDecodeBatched on ``cudaJpegDecoder->stream``, synchronised before it
    returns). The caching allocator hands out a block as soon as it is freed on its stream, so the decoder can be
    given memory that kernels still queued on the caller's stream have yet to read, and overwrite it (pytorch/vision
    PR #9606; torchcodec PR #1634: "wrong numbers, NaNs"). That was --decode gpu's divergence: measured on an H200,
    SSDLite-Large at batch 256 on 8,192 make_voc JPEGs, the loss went NaN near step 21 with nvJPEG and trained with
    the same batches decoded on the CPU (benchmarks/results/h200_decode_gpu_divergence.json). decode_batch keeps it
    from happening: it returns only once its own kernels have read the images (see there)."""
    from torchvision.io import ImageReadMode, decode_jpeg
    return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)


def decode_batch(data, ends, crops, flips, size, device, spans=None):
    """Decode (nvJPEG on CUDA) a collated batch's files (``data``, ``ends``: collate_encoded), crop, resize to
    ``size`` (H, W) and flip on ``device``: float images in [0, 1], [B, 3, H, W].

    The crop and resize are one roi_align per image size (a folder of one camera's photos: one call for the batch):
    with ``aligned`` and one sample per output pixel it samples at left + (x + 0.5) * w / W - 0.5, the point
    F.interpolate's bilinear resize of the crop (align_corners False) samples, so it equals that resize inside the
    crop; at the crop's border it may blend in the neighbouring pixel outside the crop where interpolate repeats
    the border (at most half a pixel of difference at the edge, measured in tests/train/test_gpu_input.py).

    On CUDA it returns once the caller's stream has finished this batch's kernels: the decoded images are freed
    on return, and nvJPEG writes the next batch's into freed memory without waiting for that stream
    (decode_jpegs), so nothing of this batch may still be queued to read them. The wait costs the preparing thread
    (train_input.ahead_on_device) a few kernels' time and the step nothing. It replaces a stream of the decode's
    own and marking each of the 256 images as used by the caller's (record_stream: 256 calls a batch, each with
    the GIL). Its effect on the H200 was within a run's noise (benchmarks/results/h200_input_profile_1204c.json).

    ``spans``: a list (or deque) to which (seconds decoding, seconds cropping until the kernels are done) is
    appended (train_input.input_timings reports them)."""
    from torchvision.ops import roi_align
    t0 = time.perf_counter()
    images = decode_jpegs(split_encoded(data, ends), device)
    t1 = time.perf_counter()
    out = torch.empty((len(images), 3) + tuple(size), device=device)
    crops = crops.to(device=device, dtype=torch.float32)
    groups = {}
    for k, img in enumerate(images):
        groups.setdefault(tuple(img.shape), []).append(k)
    for idx in groups.values():
        index = torch.tensor(idx, device=device)
        stack = torch.stack([images[k] for k in idx]).float()
        c = crops[index]
        rois = torch.cat([torch.arange(len(idx), device=device, dtype=torch.float32)[:, None],
                          c[:, :2], c[:, :2] + c[:, 2:]], 1)
        out[index] = roi_align(stack, rois, tuple(size), spatial_scale=1.0, sampling_ratio=1, aligned=True)
    flips = flips.to(device)
    out = torch.where(flips[:, None, None, None], out.flip(-1), out)
    out = out.clamp_(0, 255) / 255.0  # roi_align's weights sum to 1 only to rounding
    if out.is_cuda:
        torch.cuda.current_stream(out.device).synchronize()
    if spans is not None:
        spans.append((t1 - t0, time.perf_counter() - t1))
    return out
