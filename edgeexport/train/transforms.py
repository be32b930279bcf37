"""Augmentation presets on torchvision.transforms.v2, named after torchvision's detection references."""
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2 as T

from ..device.errors import DatasetError

PRESETS = ("ssdlite", "ssd", "hflip", "none")


def train_transform(preset, image_mean):
    if preset not in PRESETS:
        raise ValueError("data augmentation must be one of {}, got {!r}".format(PRESETS, preset))
    ops = []
    if preset == "ssd":
        ops += [T.RandomPhotometricDistort(), T.RandomZoomOut(fill=[round(255 * m) for m in image_mean])]
    if preset in ("ssd", "ssdlite"):
        ops += [T.RandomIoUCrop()]
    if preset != "none":
        ops += [T.RandomHorizontalFlip(p=0.5)]
    ops += [T.ToDtype(torch.float, scale=True), T.SanitizeBoundingBoxes(), T.ToPureTensor()]
    return T.Compose(ops)


def eval_transform():
    return T.Compose([T.ToDtype(torch.float, scale=True), T.ToPureTensor()])


class TorchDetection(torch.utils.data.Dataset):
    """Wraps an edgeexport dataset (numpy HWC uint8 + numpy boxes) as tensors for torchvision's SSD."""

    def __init__(self, dataset, transform):
        self.dataset, self.transform = dataset, transform

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        try:
            img, target = self.dataset[i]
        except DatasetError as e:  # crosses the loader's process boundary as data, re-raised as one line
            return BadSample(str(e))
        h, w = img.shape[:2]
        image = tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        boxes = tv_tensors.BoundingBoxes(torch.from_numpy(target["boxes"]), format="XYXY", canvas_size=(h, w))
        out = {"boxes": boxes, "labels": torch.from_numpy(target["labels"]), "image_id": int(target["image_id"])}
        image, out = self.transform(image, out)
        return image, out


class BadSample(object):
    """An image the dataset could not read, carried out of a loader worker so that the main process can raise
    one clear DatasetError (an exception raised inside a worker comes back wrapped in its traceback's text)."""

    def __init__(self, message):
        self.message = message


def collate(batch):
    bad = [b for b in batch if isinstance(b, BadSample)]
    if bad:
        return bad[0]
    return tuple(zip(*batch))


def checked(loader):
    """Iterate a loader built with ``collate``, raising DatasetError for an unreadable image in the main process."""
    for batch in loader:
        if isinstance(batch, BadSample):
            raise DatasetError(batch.message)
        yield batch
