"""Augmentation presets on torchvision.transforms.v2, named after torchvision's detection references."""
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2 as T

from ..device.errors import DatasetError

PRESETS = ("ssdlite", "ssd", "hflip", "none")


class NvInferStretch(torch.nn.Module):
    """Feed the network as nvinfer will (``--preprocess nvinfer``): the 8-bit frame, cropped to even size and
    stretched to the network input with the bilinear filter infer_config.txt names (scaling-filter=1), by the very
    function the emulator and evaluate use (edgeexport.device.preprocess.scale_frame); boxes follow. The model's
    own transform then resizes nothing, and normalises as the export folds it into the first convolution."""

    def __init__(self, size, scaling_filter=1):
        super(NvInferStretch, self).__init__()
        self.h, self.w = int(size[0]), int(size[1])
        self.scaling_filter = scaling_filter

    def forward(self, image, target):
        from ..device.preprocess import scale_frame
        small, scale = scale_frame(image.permute(1, 2, 0).contiguous().numpy(), self.w, self.h, self.scaling_filter)
        boxes = target["boxes"].as_subclass(torch.Tensor) * torch.tensor(
            [scale.ratio_x, scale.ratio_y, scale.ratio_x, scale.ratio_y], dtype=torch.float32)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, self.w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, self.h)
        out = dict(target, boxes=tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(self.h, self.w)))
        return tv_tensors.Image(torch.from_numpy(small).permute(2, 0, 1).contiguous()), out


def train_transform(preset, image_mean, nvinfer_size=None, batch_size=None):
    """Augmentation by ``preset``; with ``nvinfer_size`` (H, W), then nvinfer's 8-bit stretch to it. With
    ``batch_size`` (H, W) the images stay uint8 and leave at that size (the batched GPU step normalises them):
    a resize here is bilinear on 8 bits, where torchvision's own transform resizes the normalised float image."""
    if preset not in PRESETS:
        raise ValueError("data augmentation must be one of {}, got {!r}".format(PRESETS, preset))
    ops = []
    if preset == "ssd":
        ops += [T.RandomPhotometricDistort(), T.RandomZoomOut(fill=[round(255 * m) for m in image_mean])]
    if preset in ("ssd", "ssdlite"):
        ops += [T.RandomIoUCrop()]
    if preset != "none":
        ops += [T.RandomHorizontalFlip(p=0.5)]
    if nvinfer_size:
        ops += [NvInferStretch(nvinfer_size)]
    elif batch_size:
        ops += [T.Resize(tuple(batch_size), antialias=False)]
    if batch_size:
        return T.Compose(ops + [T.SanitizeBoundingBoxes(), T.ToPureTensor()])
    ops += [T.ToDtype(torch.float, scale=True), T.SanitizeBoundingBoxes(), T.ToPureTensor()]
    return T.Compose(ops)


def batch_buffer(like, n):
    """A 1-D tensor of ``n`` elements of ``like``'s dtype for a batch, in shared memory when called in a loader
    worker: the batch then reaches the main process without the copy into shared memory that sending a private
    tensor makes (torch.utils.data's own collate_tensor_fn allocates with the same storage call)."""
    if torch.utils.data.get_worker_info() is None:
        return like.new_empty(n)
    return like.new(like._typed_storage()._new_shared(n, device=like.device))


def joined(tensors, stack=True):
    """torch.stack (or, for 1-D tensors, torch.cat) of ``tensors`` into a batch_buffer."""
    first = tensors[0]
    out = batch_buffer(first, sum(t.numel() for t in tensors))
    if stack:
        return torch.stack(tensors, out=out.view((len(tensors),) + tuple(first.shape)))
    return torch.cat(tensors, out=out)


def collate_batch(batch):
    """Fixed-size uint8 images -> (images [B, 3, H, W] uint8, boxes [B, M, 4], labels [B, M], valid [B, M])."""
    from .ssd_loss import pad_targets
    bad = [b for b in batch if isinstance(b, BadSample)]
    if bad:
        return bad[0]
    images = joined([im for im, _ in batch])
    return (images,) + pad_targets([t for _, t in batch])


def eval_transform(nvinfer_size=None):
    ops = [NvInferStretch(nvinfer_size)] if nvinfer_size else []
    return T.Compose(ops + [T.ToDtype(torch.float, scale=True), T.ToPureTensor()])


class EpochSeeded(torch.utils.data.Dataset):
    """A dataset whose samples draw their augmentation from (seed, epoch, index), whichever worker draws them, so
    a resumed run replays an epoch exactly. The epoch travels in the index: ``epoch * len(self) + i`` (what
    EpochsSampler yields, so the workers run into the next epoch without waiting for this one to end), counted
    from ``set_epoch`` (shared memory, for callers that index one epoch at a time)."""

    def __init__(self, seed):
        import multiprocessing
        self.seed = int(seed)
        self._epoch = multiprocessing.Value("l", 0, lock=False)

    def set_epoch(self, epoch):
        self._epoch.value = int(epoch)

    def locate(self, index):
        """(epoch, sample index) of a loader index."""
        epoch, i = divmod(int(index), len(self))
        return self._epoch.value + epoch, i


class EpochsSampler(torch.utils.data.Sampler):
    """The indices of epochs ``start`` .. ``stop - 1`` in one stream, each epoch shuffled from (seed, epoch) and
    split over ``world`` processes, cut to whole batches, and encoded as ``epoch * n + i`` (EpochSeeded.locate).
    One DataLoader iterator then serves the whole run: its workers prepare the next epoch's first batches while
    this one's last steps run, where a loader restarted per epoch leaves the GPU idle until they refill (a batch
    of 256 JPEGs is about half a second of one worker's time)."""

    def __init__(self, n, batch, start, stop, seed, rank=0, world=1):
        self.n, self.start, self.stop, self.seed, self.rank, self.world = n, start, stop, seed, rank, world
        self.per_epoch = n // (batch * world) * batch

    def __iter__(self):
        for epoch in range(self.start, self.stop):
            g = torch.Generator()
            g.manual_seed(self.seed * 100003 + epoch)
            mine = torch.randperm(self.n, generator=g)[self.rank::self.world][:self.per_epoch]
            for i in mine.tolist():
                yield epoch * self.n + i

    def __len__(self):
        return self.per_epoch * max(0, self.stop - self.start)


class TorchDetection(EpochSeeded):
    """Wraps an edgeexport dataset (numpy HWC uint8 + numpy boxes) as tensors for torchvision's SSD."""

    def __init__(self, dataset, transform, seed=0):
        super(TorchDetection, self).__init__(seed)
        self.dataset, self.transform = dataset, transform

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        epoch, i = self.locate(index)
        torch.manual_seed((self.seed * 1000003 + epoch * 100003 + i) % (2 ** 63))
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
