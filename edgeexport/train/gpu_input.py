"""JPEG datasets decoded on the GPU (``--decode gpu``): loader workers only read the file's bytes and draw each
sample's augmentation (SSD's IoU crop and flip, edgeexport.train.ssd_crop) from the boxes and the image size in the
header; the main process decodes the batch with nvJPEG (torchvision.io.decode_jpeg on CUDA), then crops, resizes
and flips the whole batch in a few kernels. The CPU never touches a pixel, unless asked to take a share of each
batch (``cpu_share``, ``--cpu-decode-share``): the workers then decode that share as --decode cpu does, and
nvJPEG decodes the rest; or unless a file is progressive or CMYK (batched_by_nvjpeg): a worker decodes those.
(On an H200 beside the compiled step, nvJPEG's part took as long for 180 files as for 256: there its time was a
wait, not work; benchmarks/RESULTS.md, sixth pass.)

``--crop-on gpu`` (``crop_on_gpu``): the workers' share (all of each batch with --decode cpu) is decoded and its
crop cut out in the worker (a crop much larger than the output is resized there: SHIP_AT_MOST), then resized and
flipped on the GPU with the batch (crops_into: one Triton kernel, triton_crops, whose reference is resized_crops),
so a worker does not resize: that was 0.35 of --decode cpu's 1.31 ms a sample for 480x360 photos on the 2-core
machine, the decode 0.55 (benchmarks/loader_speed.py --stages: benchmarks/results/cpu2_loader_speed_crop_on_gpu.json;
RESULTS.md, eighth pass).
"""
import collections
import logging
import time

import numpy as np
import torch

from ..device.errors import DatasetError
from .decoded_crops import FileSamples, decode_rgb, whole_jpeg
from .transforms import BadSample, batch_buffer, joined

JPEG_SUFFIXES = (".jpg", ".jpeg")
# --crop-on gpu ships a crop of up to this many output images' pixels, and resizes a larger one in the worker:
# shipping costs a worker the copy into the batch (its pages new each batch) and the batch's bytes grow with the
# photo; resizing costs about the same whatever the crop. On the 2-core machine, 1920x1080 photos shipped whole
# crops at 145 img/s a core against 173 for --decode cpu; 480x360 photos, whose crops are all below this, 1.36x
# --decode cpu (benchmarks/RESULTS.md, eighth pass).
SHIP_AT_MOST = 2

# A collated batch. ``data``: the nvJPEG files end to end as one uint8 tensor, ``ends``: where each file ends,
# ``crops`` [F, 4]: their drawn crops, ``paths``: their paths (to name a file the decoder refuses); ``pixels``: the
# crops the workers cut out of their decoded images (--crop-on gpu), each [h, w, 3], end to end, ``shapes`` [P, 2]:
# their (h, w), at the positions where ``cut`` [B] is True; ``decoded`` [C, 3, H, W] uint8: the samples the workers
# decoded, cropped, resized and flipped already, at the positions where ``on_cpu`` [B] is True; the files at the
# other positions; ``flips`` [B]: what is still to flip; ``boxes``, ``labels``, ``valid``: every sample's targets in
# batch order (pad_targets).
EncodedBatch = collections.namedtuple(
    "EncodedBatch", "data ends crops paths pixels shapes cut decoded on_cpu flips boxes labels valid")


def decoded_here(position, share):
    """Whether the sample at ``position`` of its batch is decoded by the loader worker: evenly spread, so that
    every batch of n has floor(n * share) of them (a share drawn per sample would vary the feeding thread's
    work from batch to batch)."""
    return int((position + 1) * share) > int(position * share)


def batched_by_nvjpeg(path, data):
    """(width, height, whether nvJPEG decodes the file, ``data``, in torchvision's batched call) from its header.
    torchvision's decode_jpegs_cuda.cpp decodes in one batched call only what nvjpegDecodeBatchedSupported takes,
    and the rest one by one ("other JPEG types such as progressive JPEGs can be decoded one-by-one in software
    slow"), in the thread that feeds the step; and it never calls nvjpegDecodeParamsSetAllowCMYK, without which
    nvJPEG does not convert a 4-component (CMYK) file to RGB ("The CMYK-to-RGB conversion is disabled by default",
    nvJPEG documentation). So progressive and CMYK files go to a worker, whose libjpeg-turbo reads both; so does a
    file that does not end in the end-of-image marker (FF D9): cut short, or with data after the image, where
    --decode cpu decides (naming the file cut short) whatever nvJPEG would do."""
    from PIL import Image
    with Image.open(path) as im:
        batched = im.mode in ("RGB", "L") and not im.info.get("progressive")
        return im.size[0], im.size[1], batched and whole_jpeg(data)


class EncodedDetection(FileSamples):
    """A file-backed dataset (``items``: (path, boxes, labels)) as encoded JPEG bytes, the drawn crop and flip, and
    the boxes already in the network's ``size`` (H, W); a batch's ``cpu_share`` of the samples (decoded_here) as
    --decode cpu's decoded samples instead, or (``crop_on_gpu``) as crops cut out of the decoded images, for the
    device to resize."""

    def __init__(self, dataset, preset, size, seed=0, cpu_share=0.0, crop_on_gpu=False, reduced=False):
        super(EncodedDetection, self).__init__(dataset, preset, size, seed,
                                               "--crop-on gpu" if crop_on_gpu else "--decode gpu", reduced)
        if not 0.0 <= cpu_share <= 1.0:
            raise DatasetError("cpu_share is the fraction of a batch decoded on the CPU, from 0 to 1; got {}".format(
                cpu_share))
        self.cpu_share, self.crop_on_gpu = float(cpu_share), bool(crop_on_gpu)
        # every sample decoded by the workers: the files need not be JPEG (decode_rgb reads what PIL reads)
        bad = [p for p, _, _ in self.items if not p.lower().endswith(JPEG_SUFFIXES)] if cpu_share < 1 else []
        if bad:
            raise DatasetError("--decode gpu decodes JPEG only; {} (and {} more) is not: decode on the CPU".format(
                bad[0], len(bad) - 1))

    def __getitem__(self, index):
        """(bytes, crop, flip, target, path): one file for nvJPEG; a file nvJPEG's batched decode does not take
        (batched_by_nvjpeg) decoded here instead, as the workers' share is."""
        path = self.items[self.locate(index)[1]][0]
        try:
            data = np.fromfile(path, np.uint8)
            w, h, batched = batched_by_nvjpeg(path, data)
        except Exception as e:  # by design: whatever cannot be read is "not an image" for this sample
            return BadSample("cannot read image {}: {}".format(path, e))
        if not batched:
            return self.cut_out(index) if self.crop_on_gpu else self.decoded(index)
        crop, flip, target = self.augment(index, w, h)
        return torch.from_numpy(data), torch.tensor(crop), flip, target, path

    def cut_out(self, index):
        """--crop-on gpu's sample: FileSamples.decoded with SHIP_AT_MOST (a crop cut out, or a big one resized)."""
        return self.decoded(index, SHIP_AT_MOST)

    def __getitems__(self, indices):
        """A batch's samples (the DataLoader's fetcher calls this with the whole batch): its cpu_share decoded
        here, either resized as --decode cpu does (FileSamples.decoded) or cut out (crop_on_gpu), the rest as files
        for nvJPEG."""
        here = self.cut_out if self.crop_on_gpu else self.decoded
        return [here(i) if decoded_here(j, self.cpu_share) else self[i] for j, i in enumerate(indices)]


def packed(views):
    """[h, w, 3] uint8 views -> one 1-D batch_buffer holding them end to end, each copied once."""
    out = batch_buffer(views[0], sum(v.numel() for v in views))
    at = 0
    for v in views:
        out[at:at + v.numel()].view(v.shape).copy_(v)
        at += v.numel()
    return out


def collate_encoded(batch):
    """Samples -> an EncodedBatch. The files go end to end into one tensor: a worker hands each tensor of a batch
    to the main process as a shared-memory segment of its own, and 256 of them per batch (one per file) held 14
    workers on an H200 to 2,067 img/s in all, below one worker's 2,690 (benchmarks/results/h200_jpeg_log.txt, a1)."""
    from .ssd_loss import pad_targets
    bad = [b for b in batch if isinstance(b, BadSample)]
    if bad:
        return bad[0]
    files = [b for b in batch if len(b) == 5]  # (bytes, crop, flip, target, path)
    cut = [b for b in batch if len(b) == 3]  # (crop's pixels, flip, target)
    here = [b for b in batch if len(b) == 2]  # (resized image, target)
    boxes, labels, valid = pad_targets([b[3] if len(b) == 5 else b[-1] for b in batch])
    return EncodedBatch(
        data=joined([f[0] for f in files], stack=False) if files else torch.zeros(0, dtype=torch.uint8),
        ends=torch.tensor([len(f[0]) for f in files], dtype=torch.int64).cumsum(0),
        crops=torch.stack([f[1] for f in files]) if files else torch.zeros((0, 4), dtype=torch.int64),
        paths=tuple(f[4] for f in files),
        pixels=packed([c[0] for c in cut]) if cut else torch.zeros(0, dtype=torch.uint8),
        shapes=torch.tensor([c[0].shape[:2] for c in cut], dtype=torch.int64).reshape(-1, 2),
        cut=torch.tensor([len(b) == 3 for b in batch]),
        decoded=joined([d[0] for d in here]) if here else torch.zeros((0, 3, 1, 1), dtype=torch.uint8),
        on_cpu=torch.tensor([len(b) == 2 for b in batch]),
        flips=torch.tensor([bool(b[2]) if len(b) == 5 else len(b) == 3 and bool(b[1]) for b in batch]),
        boxes=boxes, labels=labels, valid=valid)


def split_encoded(data, ends):
    """The files of a collated batch as views of its one byte tensor (what decode_jpeg takes: 1-D, contiguous)."""
    return list(torch.split(data, torch.diff(ends, prepend=ends.new_zeros(1)).tolist()))


def decode_jpegs(data, device, chunk=None):
    """nvJPEG decode of a batch (torchvision.io.decode_jpeg on CUDA): [3, H, W] uint8 images on ``device``.

    torchvision's CUDA decoder allocates its outputs while the caller's stream is current, then writes them from a
    stream of its own that does not wait for the caller's (torchvision/csrc/io/image/cuda/decode_jpegs_cuda.cpp:
    prepare_buffers' torch::empty, then nvjpegDecodeBatched on ``cudaJpegDecoder->stream``, synchronised before it
    returns). The caching allocator hands out a block as soon as it is freed on its stream, so the decoder can be
    given memory that kernels still queued on the caller's stream have yet to read, and overwrite it (pytorch/vision
    PR #9606; torchcodec PR #1634: "wrong numbers, NaNs"). That was --decode gpu's divergence: measured on an H200,
    SSDLite-Large at batch 256 on 8,192 make_voc JPEGs, the loss went NaN near step 21 with nvJPEG and trained with
    the same batches decoded on the CPU (benchmarks/results/h200_decode_gpu_divergence.json). decode_batch keeps it
    from happening: it returns only once its own kernels have read the images (see there).

    One call for the batch unless ``chunk`` (a benchmark's) asks for calls of at most that many files. Calls of 128
    were the trainer's for a day, because a call of 256 had waited for a 99 ms kernel on another stream and one of
    128 had not (benchmarks/nvjpeg_overlap.py, results/h200_nvjpeg_overlap_1205b.json); fed from a JPEG folder to the
    compiled step on the H200 they did no better than one call (4,381 img/s, 67 % of the step alone, against 71-74 %
    for one call in two other visits), and the microbenchmark's sizes did not repeat from visit to visit
    (results/h200_nvjpeg_overlap_1205c.json; benchmarks/RESULTS.md, seventh pass)."""
    from torchvision.io import ImageReadMode, decode_jpeg
    out = []
    step = chunk or max(1, len(data))
    for k in range(0, len(data), step):
        out += decode_jpeg(data[k:k + step], mode=ImageReadMode.RGB, device=device)
    return out


def decoded_files(batch, device):
    """decode_jpegs of an EncodedBatch's files; when the batched call fails, each file alone, and one the decoder
    still refuses (a damaged file whose header reads, a JPEG nvJPEG does not take) decoded on the CPU, as --decode
    cpu would: a file neither reads is a DatasetError naming it, as it is there."""
    files = split_encoded(batch.data, batch.ends)
    try:
        return decode_jpegs(files, device)
    except torch.cuda.OutOfMemoryError:
        raise  # not the files' fault: the trainer names the batch size that fits
    except Exception:  # by design: which file the decoder refuses is found below, one at a time
        pass
    images = []
    for path, data in zip(batch.paths, files):
        try:
            images += decode_jpegs([data], device)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception:  # by design: what the decoder refuses, the CPU reads, or names
            images.append(decode_rgb(path).to(device))
    return images


def resized_crops(pixels, shapes, size, device):
    """The workers' cut-out crops (``pixels``: [h, w, 3] uint8 each, end to end; ``shapes`` [P, 2]: their (h, w),
    on the host) on ``device``, each resized to ``size`` (H, W): [P, 3, H, W] float in 0..255.

    Bilinear as F.interpolate on the crop with align_corners False (aten/src/ATen/native/UpSample.h,
    area_pixel_compute_source_index: source = (dest + 0.5) * in / out - 0.5, below 0 taken as 0; the second
    neighbour clamped to the last row or column), in float: the four neighbours of every output pixel gathered from
    the packed crops in one indexing per neighbour, whatever each crop's size. It equals the CPU path's resize to its
    8-bit rounding, border included (tests/train/test_gpu_input.py)."""
    if not len(shapes):
        return torch.zeros((0, 3) + tuple(size), device=device)
    flat = pixels.to(device, non_blocking=True).view(-1, 3)
    hw = shapes.to(device)
    first = torch.cumsum(hw[:, 0] * hw[:, 1], 0) - hw[:, 0] * hw[:, 1]  # each crop's first pixel in ``flat``

    def taps(n_in, n_out):
        src = ((torch.arange(n_out, device=device, dtype=torch.float32) + 0.5) * (n_in[:, None].float() / n_out)
               - 0.5).clamp_(min=0)
        lo = src.long()
        return lo, torch.minimum(lo + 1, n_in[:, None] - 1), src - lo  # [P, n_out] each

    y0, y1, wy = taps(hw[:, 0], int(size[0]))
    x0, x1, wx = taps(hw[:, 1], int(size[1]))
    row0 = (first[:, None] + y0 * hw[:, 1:2])[:, :, None]  # [P, H, 1]
    row1 = (first[:, None] + y1 * hw[:, 1:2])[:, :, None]
    x0, x1, wx = x0[:, None, :], x1[:, None, :], wx[:, None, :, None]

    def at(rows, cols):
        return flat[rows + cols].float()  # [P, H, W, 3]
    # in place: at batch 256 and 320x320 each [P, H, W, 3] float is 315 MB
    top = at(row0, x0).lerp_(at(row0, x1), wx)
    bottom = at(row1, x0).lerp_(at(row1, x1), wx)
    return top.lerp_(bottom, wy[:, :, None, None]).permute(0, 3, 1, 2)


def finished(images, flips):
    """Images in 0..255 [N, 3, H, W] float -> mirrored where ``flips`` [N] (on their device), in [0, 1]."""
    images = torch.where(flips[:, None, None, None], images.flip(-1), images)
    return images.clamp_(0, 255) / 255.0  # roi_align's weights sum to 1 only to rounding


# False: decode_batch resizes the workers' crops with the torch reference even where Triton is there
# (benchmarks/crop_resize_speed.py times both); crops_into sets it where Triton cannot build its kernel
USE_TRITON = True


def triton_crops(device):
    """The Triton kernel's module (triton_crops) for images on ``device``, or None: not CUDA (Triton's compiled
    kernels run on GPUs), or Triton does not import, or it could not build the kernel here (crops_into)."""
    if not USE_TRITON or device.type != "cuda":
        return None
    try:
        from . import triton_crops as module
    except ImportError:  # no Triton (torch's CPU wheels, macOS): the reference does the same
        return None
    return module


def crops_into(out, rows, pixels, shapes, flips):
    """The workers' cut-out crops (packed ``pixels``, ``shapes`` [P, 2], ``flips`` [P], on the host) resized,
    flipped and in [0, 1], into ``out`` at batch positions ``rows`` [P]: on CUDA in one Triton kernel
    (triton_crops), else with resized_crops, its reference.

    Triton compiles its kernel's launcher with the machine's C compiler on first use (triton/runtime/build.py:
    "Failed to find C compiler" without one, as in PyTorch's runtime Docker images); whatever keeps the kernel from
    building or running, the run goes on with the reference (the same pixels, 4x the GPU time on an H100:
    benchmarks/RESULTS.md, eleventh pass), said once in a warning that names the cause."""
    global USE_TRITON
    device = out.device
    fused = triton_crops(device)
    if fused is not None:
        try:
            fused.resize_crops_into(out, rows, pixels.to(device, non_blocking=True), shapes, flips)
            return
        except torch.cuda.OutOfMemoryError:
            raise  # not Triton's fault: the trainer names the batch size that fits
        except Exception as e:  # by design: anything that stops the kernel, the reference does instead
            USE_TRITON = False
            logging.getLogger(__name__).warning(
                "--crop-on gpu: Triton's resize kernel did not run here (%s: %s); the torch reference resizes the "
                "crops instead (the same pixels, about 4x its GPU time)", type(e).__name__,
                (str(e).strip().splitlines() or [""])[0])
    out[rows.to(device)] = finished(resized_crops(pixels, shapes, tuple(out.shape[2:]), device), flips.to(device))


def decode_batch(batch, size, device, spans=None):
    """An EncodedBatch's images on ``device`` as float in [0, 1], [B, 3, H, W]: its files decoded (nvJPEG on CUDA),
    cropped, resized to ``size`` (H, W) and flipped there; the crops the workers cut out resized and flipped there
    (crops_into); the samples the workers finished copied in between. Each part is written once, finished.

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
    images = decoded_files(batch, device) if len(batch.ends) else []
    t1 = time.perf_counter()
    out = torch.empty((len(batch.on_cpu), 3) + tuple(size), device=device)
    if len(batch.decoded):
        # positions found on the host: a boolean mask on the device would wait for the GPU to count it; the
        # workers have flipped these already
        out[batch.on_cpu.nonzero()[:, 0].to(device)] = batch.decoded.to(device, non_blocking=True).float() / 255.0
    if len(batch.shapes):
        crops_into(out, batch.cut.nonzero()[:, 0], batch.pixels, batch.shapes, batch.flips[batch.cut])
    at = (~(batch.on_cpu | batch.cut)).nonzero()[:, 0]  # each file's position in the batch
    crops = batch.crops.to(device=device, dtype=torch.float32)
    groups = {}
    for k, img in enumerate(images):
        groups.setdefault(tuple(img.shape), []).append(k)
    for idx in groups.values():
        stack = torch.stack([images[k] for k in idx]).float()
        c = crops[torch.tensor(idx, device=device)]
        rois = torch.cat([torch.arange(len(idx), device=device, dtype=torch.float32)[:, None],
                          c[:, :2], c[:, :2] + c[:, 2:]], 1)
        rows = at[torch.tensor(idx)]
        out[rows.to(device)] = finished(roi_align(stack, rois, tuple(size), spatial_scale=1.0, sampling_ratio=1,
                                                  aligned=True), batch.flips[rows].to(device))
    if out.is_cuda:
        torch.cuda.current_stream(out.device).synchronize()
    if spans is not None:
        spans.append((t1 - t0, time.perf_counter() - t1))
    return out
