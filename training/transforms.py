"""Augmentation presets on torchvision.transforms.v2, named after torchvision's detection references."""
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2 as T

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
        img, target = self.dataset[i]
        h, w = img.shape[:2]
        image = tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        boxes = tv_tensors.BoundingBoxes(torch.from_numpy(target["boxes"]), format="XYXY", canvas_size=(h, w))
        out = {"boxes": boxes, "labels": torch.from_numpy(target["labels"]), "image_id": int(target["image_id"])}
        image, out = self.transform(image, out)
        return image, out


def collate(batch):
    return tuple(zip(*batch))
