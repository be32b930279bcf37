"""``--decode cpu`` on an image folder: each loader worker decodes the file (libjpeg-turbo through torchvision.io),
cuts the drawn crop out of it as a view, resizes that to the network's size on 8 bits and flips it: one sample, one
pass, ready for collate_batch.

torchvision's v2 pipeline does the same (decode with PIL, RandomIoUCrop, RandomHorizontalFlip, Resize(antialias
False), SanitizeBoundingBoxes) at 41 img/s per core on CPU2, 24.6 ms an image for 480x360 photos to 320x320, of
which decoding is 1.4 ms: the rest is RandomIoUCrop's per-trial tensor ops and the generic dispatch of the
transforms around it. Here the same crop, flip and resize come out equal to the pixel (tests/train/
test_decoded_crops.py), so the v2 pipeline stays only for what this one does not do (``--decode cpu-v2``: the ssd
preset's photometric distortion and zoom-out, nvinfer's preprocessing, rendered datasets).

``--decode-scale reduced`` (FileSamples ``reduced``): for photos much larger than the network's input, where the
decode is nearly all of a sample (4032x3024 photos: 39 ms a sample, as long as their decode timed alone;
benchmarks/loader_speed.py --stages), the crop is drawn from the header's size, and a JPEG whose crop covers at
least twice the input is decoded at the DCT scale that still covers it (dct_scale, reduced_crop).
"""
import numpy as np
import torch
import torch.nn.functional as F

from ..device.errors import DatasetError
from .ssd_crop import FAST_PRESETS, draw, scale_and_sanitize
from .transforms import BadSample, EpochSeeded


def file_items(dataset, what):
    """The dataset's (path, boxes, labels) list, or DatasetError saying why ``what`` cannot read it."""
    items = getattr(dataset, "items", None)
    if items is None:
        raise DatasetError("{} reads image files; this dataset renders its images: use --decode cpu-v2".format(what))
    return items


def decode_rgb(path, data=None):
    """uint8 [3, H, W] from an image file (``data``: its bytes as uint8 numpy, if read already); DatasetError
    naming the file when it is not an image."""
    from torchvision.io import ImageReadMode, decode_image
    try:
        return decode_image(torch.from_numpy(np.fromfile(path, np.uint8) if data is None else data),
                            mode=ImageReadMode.RGB)
    except Exception:  # by design: what libjpeg/libpng here cannot read goes to PIL, whose verdict is final
        from ..data.common import read_rgb
        return torch.from_numpy(read_rgb(path)).permute(2, 0, 1).contiguous()


# libjpeg's DCT scaling decodes a JPEG at 1/2, 1/4 or 1/8 of its size for a fraction of the work: its reduced-size
# inverse DCTs (libjpeg-turbo's jidctred.c: jpeg_idct_4x4, 2x2, 1x1) skip what a full decode computes only to be
# thrown away by a large downscale; a pixel at 1/s is then about the mean of the s x s pixels it covers, and an image
# of W x H comes out ceil(W/s) x ceil(H/s) (jdmaster.c, jpeg_core_output_dimensions: jdiv_round_up). OpenCV asks
# for it with IMREAD_REDUCED_COLOR_s; the pixels equal Pillow's Image.draft at that scale (tests/train/
# test_decoded_crops.py).
# On the 2-core machine (benchmarks/loader_speed.py --stages, RESULTS.md ninth pass), 4032x3024 photos: 38.0 ms a
# full decode (torchvision.io), 14.0 / 11.2 / 9.1 at 1/2, 1/4, 1/8; 1920x1080: 4.3 ms, 3.0 / 2.6 / 2.1 (entropy
# decoding is not scaled, so 1/8 is not 64 times faster).
DCT_SCALES = (8, 4, 2)


def dct_scale(crop, size):
    """The largest of DCT_SCALES at which ``crop`` (l, t, w, h) still covers the network's ``size`` (H, W) on both
    sides, so that the resize after it still shrinks (or keeps) the image; else 1."""
    _, _, cw, ch = crop
    return next((s for s in DCT_SCALES if cw >= s * size[1] and ch >= s * size[0]), 1)


def on_grid(crop, scale):
    """``crop`` (l, t, w, h) moved to the nearest whole pixels of the image decoded at 1/``scale``, in the full
    image's pixels (multiples of ``scale``): the pixels cut out and the boxes cut to them are then the same region
    (within scale/2 pixels of the drawn one)."""
    left, top, cw, ch = crop
    half = scale // 2
    l, t = (left + half) // scale, (top + half) // scale
    r, b = (left + cw + half) // scale, (top + ch + half) // scale
    return l * scale, t * scale, (r - l) * scale, (b - t) * scale


def whole_jpeg(data):
    """Whether ``data`` (uint8 numpy) starts with JPEG's start-of-image marker and ends with its end-of-image one:
    a file cut short is left to the full decode, which names it (OpenCV would fill the missing rows with grey)."""
    return len(data) > 4 and data[0] == 0xFF and data[1] == 0xD8 and data[-2] == 0xFF and data[-1] == 0xD9


def scaled_decode(data, scale):
    """uint8 [H/scale, W/scale, 3] BGR (rounded up): the JPEG ``data`` decoded at 1/``scale`` (one of DCT_SCALES),
    pixels as stored (no EXIF rotation, as decode_rgb); None if OpenCV cannot decode it."""
    import cv2
    flags = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[scale]
    return cv2.imdecode(data, flags | cv2.IMREAD_IGNORE_ORIENTATION)


def reduced_crop(data, scale, crop):
    """uint8 [h, w, 3] RGB: ``crop`` (on_grid's, in full-size pixels) of the JPEG ``data`` decoded at 1/``scale``;
    None if OpenCV cannot decode it."""
    import cv2
    image = scaled_decode(data, scale)
    if image is None:
        return None
    left, top, cw, ch = (v // scale for v in crop)
    return cv2.cvtColor(image[top:top + ch, left:left + cw], cv2.COLOR_BGR2RGB)


def crop_resize_flip(image, crop, flip, size):
    """uint8 [3, H, W] -> uint8 [3, size]: the crop (l, t, w, h), bilinear without antialiasing on 8 bits (as
    torchvision's Resize(antialias=False) on a uint8 image), then the flip (bilinear resizing is mirror-symmetric,
    so flipping after it equals torchvision's flip before it)."""
    left, top, cw, ch = crop
    patch = image[None, :, top:top + ch, left:left + cw]
    out = F.interpolate(patch, size=tuple(size), mode="bilinear", align_corners=False, antialias=False)[0]
    return out.flip(-1) if flip else out


class FileSamples(EpochSeeded):
    """A file-backed dataset's samples with SSD's crop and flip drawn from (seed, epoch, index): the part the CPU
    and GPU paths share. ``augment(index, w, h)`` draws one sample's crop, flip and boxes in the network's size."""

    def __init__(self, dataset, preset, size, seed, what, reduced=False):
        super(FileSamples, self).__init__(seed)
        if preset not in FAST_PRESETS:
            raise DatasetError("{} takes --data-augmentation {}; {} (photometric distortion, zoom-out) runs in "
                               "torchvision's v2 pipeline: --decode cpu-v2".format(what, ", ".join(FAST_PRESETS),
                                                                                   preset))
        self.items = file_items(dataset, what)
        self.preset, self.size = preset, tuple(int(s) for s in size)
        self.reduced = bool(reduced)  # --decode-scale reduced: JPEGs decoded at the DCT scale their crop allows

    def __len__(self):
        return len(self.items)

    def augment(self, index, w, h, grid=None):
        epoch, i = self.locate(index)
        _, boxes, labels = self.items[i]
        crop, flip, boxes, labels = draw(np.random.default_rng([self.seed, epoch, i]), w, h, boxes, labels,
                                         self.preset, grid)
        boxes, labels = scale_and_sanitize(boxes, labels, crop, self.size)
        return crop, flip, {"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels)}

    def decoded(self, index, ship_at_most=None):
        """(uint8 [3, size], target): one sample decoded, cropped, resized and flipped in this process. With
        ``ship_at_most`` (--crop-on gpu), a crop of at most that many output images' pixels is only cut out:
        (crop [h, w, 3] uint8, a view of the decoded image, flip, target), for the device to resize and flip."""
        path = self.items[self.locate(index)[1]][0]
        try:
            image, crop, flip, target = self.read(index, path)
        except DatasetError as e:  # crosses the loader's process boundary as data
            return BadSample(str(e))
        left, top, cw, ch = crop
        if ship_at_most is not None and cw * ch <= ship_at_most * self.size[0] * self.size[1]:
            return image[:, top:top + ch, left:left + cw].permute(1, 2, 0), flip, target
        return crop_resize_flip(image, crop, flip, self.size), target

    def read(self, index, path):
        """(uint8 [3, H, W] image, crop in it, flip, target) for one sample. --decode-scale reduced: a whole JPEG
        whose drawn crop is at least twice the network's size is decoded at 1/2, 1/4 or 1/8 (dct_scale), the crop
        moved onto that scale's pixels before the boxes are cut to it (on_grid); the image is then that crop alone."""
        data = None
        if self.reduced:
            try:
                data = np.fromfile(path, np.uint8)
            except Exception:  # by design: a file that does not read is decode_rgb's to name
                pass
        if data is not None and whole_jpeg(data):
            got = self.read_reduced(index, path, data)
            if got is not None:
                return got
        image = decode_rgb(path, data)
        return (image,) + self.augment(index, image.shape[2], image.shape[1])

    def read_reduced(self, index, path, data):
        """read's answer for a whole JPEG, or None where the full decode is to answer (a header PIL cannot read,
        a decode OpenCV refuses or sizes otherwise: decode_rgb then reads the file or names it)."""
        from ..data.common import image_size
        try:
            w, h = image_size(path)  # the header alone
        except DatasetError:  # decode_rgb's to name
            return None
        chosen = []

        def grid(crop):
            chosen.append(dct_scale(crop, self.size))
            return on_grid(crop, chosen[0])
        crop, flip, target = self.augment(index, w, h, grid)
        scale = chosen[0]
        if scale == 1:
            image = decode_rgb(path, data)
            return (image, crop, flip, target) if tuple(image.shape[1:]) == (h, w) else None
        pixels = reduced_crop(data, scale, crop)
        if pixels is None or pixels.shape[:2] != (crop[3] // scale, crop[2] // scale):
            return None
        return torch.from_numpy(pixels).permute(2, 0, 1), (0, 0) + pixels.shape[1::-1], flip, target


class DecodedCrops(FileSamples):
    """Fixed-size uint8 samples: decoded, cropped, resized and flipped here, in the loader worker."""

    def __init__(self, dataset, preset, size, seed=0, reduced=False):
        super(DecodedCrops, self).__init__(dataset, preset, size, seed, "--decode cpu", reduced)

    def __getitem__(self, index):
        return self.decoded(index)
