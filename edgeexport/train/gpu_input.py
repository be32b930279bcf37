"""JPEG datasets decoded on the GPU (``--decode gpu``): loader workers only read the file's bytes and draw each
sample's augmentation (horizontal flip, SSD's IoU crop) from the boxes and the image size in the header; the main
process decodes the batch with nvJPEG (torchvision.io.decode_jpeg on CUDA), crops, resizes and flips on the GPU.
The CPU then never touches a pixel: on a JPEG dataset, decoding is what bounds the loader.

The IoU crop follows torchvision.transforms.v2.RandomIoUCrop (SSD's sampling): pick a minimum IoU among
0, 0.1, 0.3, 0.5, 0.7, 0.9 or "no crop", then up to 40 trials of a crop of 0.3-1.0 of each side with an aspect
ratio within 0.5-2, keeping boxes whose centre falls inside when one of them overlaps the crop by the minimum IoU.
"""
import numpy as np
import torch
import torch.nn.functional as F

from ..device.errors import DatasetError
from .transforms import BadSample, EpochSeeded

IOU_OPTIONS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, None)
JPEG_SUFFIXES = (".jpg", ".jpeg")


def iou_crop(rng, w, h, boxes, min_scale=0.3, max_scale=1.0, min_ar=0.5, max_ar=2.0, trials=40):
    """(left, top, width, height, kept box mask) or None for "no crop"."""
    if len(boxes) == 0:
        return None
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    while True:
        min_iou = IOU_OPTIONS[int(rng.integers(len(IOU_OPTIONS)))]
        if min_iou is None:
            return None
        for _ in range(trials):
            sw, sh = rng.uniform(min_scale, max_scale, 2)
            cw, ch = int(w * sw), int(h * sh)
            if ch == 0 or not min_ar <= cw / float(ch) <= max_ar:
                continue
            fx, fy = rng.random(2)
            left, top = int((w - cw) * fx), int((h - ch) * fy)
            if cw == 0:
                continue
            inside = (left < cx) & (cx < left + cw) & (top < cy) & (cy < top + ch)
            if not inside.any():
                continue
            b = boxes[inside]
            ix = np.clip(np.minimum(b[:, 2], left + cw) - np.maximum(b[:, 0], left), 0, None)
            iy = np.clip(np.minimum(b[:, 3], top + ch) - np.maximum(b[:, 1], top), 0, None)
            inter = ix * iy
            iou = inter / ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) + cw * ch - inter)
            if iou.max() < min_iou:
                continue
            return left, top, cw, ch, inside


class EncodedDetection(EpochSeeded):
    """A file-backed dataset (``items``: (path, boxes, labels)) as encoded JPEG bytes plus drawn augmentation."""

    def __init__(self, dataset, preset="ssdlite", seed=0):
        super(EncodedDetection, self).__init__(seed)
        if preset not in ("ssdlite", "hflip", "none"):
            raise DatasetError("--decode gpu takes --data-augmentation ssdlite, hflip or none (the ssd preset's "
                               "photometric distortion and zoom-out run on the CPU)")
        items = getattr(dataset, "items", None)
        if items is None:
            raise DatasetError("--decode gpu reads image files; this dataset renders its images (decode on the CPU)")
        bad = [p for p, _, _ in items if not p.lower().endswith(JPEG_SUFFIXES)]
        if bad:
            raise DatasetError("--decode gpu decodes JPEG only; {} (and {} more) is not: decode on the CPU".format(
                bad[0], len(bad) - 1))
        self.items, self.preset = items, preset

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from ..data.common import image_size
        path, boxes, labels = self.items[i]
        try:
            data = np.fromfile(path, np.uint8)
            w, h = image_size(path)
        except Exception as e:  # by design: whatever cannot be read is "not an image" for this sample
            return BadSample("cannot read image {}: {}".format(path, e))
        rng = np.random.default_rng([self.seed, self._epoch.value, int(i)])
        boxes, labels = np.asarray(boxes, np.float32).copy(), np.asarray(labels, np.int64).copy()
        crop = iou_crop(rng, w, h, boxes) if self.preset == "ssdlite" else None
        left, top, cw, ch = 0, 0, w, h
        if crop is not None:
            left, top, cw, ch, inside = crop
            boxes, labels = boxes[inside], labels[inside]
            boxes[:, 0::2] = np.clip(boxes[:, 0::2] - left, 0, cw)
            boxes[:, 1::2] = np.clip(boxes[:, 1::2] - top, 0, ch)
        flip = self.preset != "none" and rng.random() < 0.5
        if flip:
            boxes[:, [0, 2]] = cw - boxes[:, [2, 0]]
        keep = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        return (torch.from_numpy(data), torch.tensor([left, top, cw, ch]), bool(flip),
                {"boxes": torch.from_numpy(boxes[keep]), "labels": torch.from_numpy(labels[keep])})


def collate_encoded(batch):
    from .ssd_loss import pad_targets
    bad = [b for b in batch if isinstance(b, BadSample)]
    if bad:
        return bad[0]
    data, crops, flips, targets = zip(*batch)
    return (list(data), torch.stack(crops), torch.tensor(flips)) + pad_targets(list(targets))


_DECODE_STREAMS = {}


def decode_jpegs(data, device):
    """nvJPEG decode of a batch, safe for the memory the training stream is still using.

    torchvision's CUDA decoder allocates its outputs while the caller's stream is current, then writes them from a
    stream of its own that does not wait for the caller's (torchvision/csrc/io/image/cuda/decode_jpegs_cuda.cpp:
    prepare_buffers' torch::empty, then nvjpegDecodeBatched on ``cudaJpegDecoder->stream``; it only makes the
    caller's stream wait for the decode afterwards). The caching allocator hands out a block as soon as it is freed
    on its stream, so the decoder can be given memory that the previous step's kernels, still queued on the
    training stream, have yet to read, and overwrite it (pytorch/vision PR #9606; torchcodec PR #1634: "wrong
    numbers, NaNs"). That was --decode gpu's divergence: measured on an H200, SSDLite-Large at batch 256 on 8,192
    make_voc JPEGs, the loss went NaN near step 21 with nvJPEG and trained with the same batches decoded on the CPU
    (benchmarks/results/h200_decode_gpu_divergence.json). Here the decode runs with a stream of ours current: its
    outputs come from that stream's pool, which only ever holds blocks freed after the training stream's recorded
    use of them (record_stream), so nothing still queued reads what nvJPEG writes; the training stream then waits
    for the decode. The decode still overlaps the previous step's kernels."""
    from torchvision.io import ImageReadMode, decode_jpeg
    if device.type != "cuda":
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    main = torch.cuda.current_stream(device)
    side = _DECODE_STREAMS.get(device)
    if side is None:
        side = _DECODE_STREAMS[device] = torch.cuda.Stream(device)
    with torch.cuda.stream(side):
        images = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    main.wait_stream(side)
    for image in images:
        image.record_stream(main)  # freed for the decode stream's next batch only once the step has read it
    return images


def decode_batch(data, crops, flips, boxes, size, device):
    """Decode (nvJPEG on CUDA), crop, resize to ``size`` (H, W) and flip on ``device``. Returns float images in
    [0, 1] [B, 3, H, W] and the boxes scaled into them."""
    images = decode_jpegs(data, device)
    out = torch.empty((len(images), 3) + tuple(size), device=device)
    scale = torch.empty((len(images), 4), device=device)
    for k, (img, c) in enumerate(zip(images, crops.tolist())):
        left, top, cw, ch = c
        patch = img[:, top:top + ch, left:left + cw].float()[None]
        out[k] = F.interpolate(patch, size=size, mode="bilinear", align_corners=False)[0]
        scale[k] = torch.tensor([size[1] / cw, size[0] / ch] * 2, device=device)
    flips = flips.to(device)
    out = torch.where(flips[:, None, None, None], out.flip(-1), out)
    return out / 255.0, boxes.to(device) * scale[:, None, :]
