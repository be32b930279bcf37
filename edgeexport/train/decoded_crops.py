"""``--decode cpu`` on an image folder: each loader worker decodes the file (libjpeg-turbo through torchvision.io),
cuts the drawn crop out of it as a view, resizes that to the network's size on 8 bits and flips it: one sample, one
pass, ready for collate_batch.

torchvision's v2 pipeline does the same (decode with PIL, RandomIoUCrop, RandomHorizontalFlip, Resize(antialias
False), SanitizeBoundingBoxes) at 41 img/s per core on CPU2, 24.6 ms an image for 480x360 photos to 320x320, of
which decoding is 1.4 ms: the rest is RandomIoUCrop's per-trial tensor ops and the generic dispatch of the
transforms around it. Here the same crop, flip and resize come out equal to the pixel (tests/train/
test_decoded_crops.py), so the v2 pipeline stays only for what this one does not do (``--decode cpu-v2``: the ssd
preset's photometric distortion and zoom-out, nvinfer's preprocessing, rendered datasets).
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


def decode_rgb(path):
    """uint8 [3, H, W] from an image file; DatasetError naming the file when it is not an image."""
    from torchvision.io import ImageReadMode, decode_image
    try:
        return decode_image(torch.from_numpy(np.fromfile(path, np.uint8)), mode=ImageReadMode.RGB)
    except Exception:  # by design: what libjpeg/libpng here cannot read goes to PIL, whose verdict is final
        from ..data.common import read_rgb
        return torch.from_numpy(read_rgb(path)).permute(2, 0, 1).contiguous()


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

    def __init__(self, dataset, preset, size, seed, what):
        super(FileSamples, self).__init__(seed)
        if preset not in FAST_PRESETS:
            raise DatasetError("{} takes --data-augmentation {}; {} (photometric distortion, zoom-out) runs in "
                               "torchvision's v2 pipeline: --decode cpu-v2".format(what, ", ".join(FAST_PRESETS),
                                                                                   preset))
        self.items = file_items(dataset, what)
        self.preset, self.size = preset, tuple(int(s) for s in size)

    def __len__(self):
        return len(self.items)

    def augment(self, index, w, h):
        epoch, i = self.locate(index)
        _, boxes, labels = self.items[i]
        crop, flip, boxes, labels = draw(np.random.default_rng([self.seed, epoch, i]), w, h, boxes, labels,
                                         self.preset)
        boxes, labels = scale_and_sanitize(boxes, labels, crop, self.size)
        return crop, flip, {"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels)}

    def decoded(self, index, ship_at_most=None):
        """(uint8 [3, size], target): one sample decoded, cropped, resized and flipped in this process. With
        ``ship_at_most`` (--crop-on gpu), a crop of at most that many output images' pixels is only cut out:
        (crop [h, w, 3] uint8, a view of the decoded image, flip, target), for the device to resize and flip."""
        try:
            image = decode_rgb(self.items[self.locate(index)[1]][0])
        except DatasetError as e:  # crosses the loader's process boundary as data
            return BadSample(str(e))
        crop, flip, target = self.augment(index, image.shape[2], image.shape[1])
        left, top, cw, ch = crop
        if ship_at_most is not None and cw * ch <= ship_at_most * self.size[0] * self.size[1]:
            return image[:, top:top + ch, left:left + cw].permute(1, 2, 0), flip, target
        return crop_resize_flip(image, crop, flip, self.size), target


class DecodedCrops(FileSamples):
    """Fixed-size uint8 samples: decoded, cropped, resized and flipped here, in the loader worker."""

    def __init__(self, dataset, preset, size, seed=0):
        super(DecodedCrops, self).__init__(dataset, preset, size, seed, "--decode cpu")

    def __getitem__(self, index):
        return self.decoded(index)
