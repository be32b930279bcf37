"""What feeds the training step, chosen once: the dataset the loader workers index, how they collate, and what the
main process does with a batch to put it on the device (the trainer and benchmarks/train_speed.py share this).

    --decode cpu     (default) image files: workers decode, crop, resize and flip (edgeexport.train.decoded_crops)
    --decode gpu     JPEG files: workers read bytes; nvJPEG and the GPU do the rest (edgeexport.train.gpu_input)
    --decode cpu-v2  torchvision's v2 transforms on what the dataset returns: every preset, nvinfer's
                     preprocessing, rendered datasets, torchvision's own loss (edgeexport.train.transforms)

On CUDA a thread of ours receives the next batches and copies (or decodes) them on a stream of its own while the
main thread launches the step: a batch of 256 uint8 images at 320x320 is 79 MB, a few milliseconds of PCIe, and
nvJPEG's batched decode of 256 photos blocks its caller for its whole length; neither now stands between two steps.
"""
import atexit

import torch

from ..device.errors import UsageError
from .transforms import TorchDetection, collate, collate_batch, train_transform

DECODE_CHOICES = ("cpu", "gpu", "cpu-v2")


class TrainInput(object):
    """``dataset`` and ``collate_fn`` for the DataLoader; ``to_device(batch)`` -> the batched step's inputs (None
    for torchvision's per-image loss, whose loop moves its own lists)."""

    def __init__(self, dataset, collate_fn, to_device):
        self.dataset, self.collate_fn, self.to_device = dataset, collate_fn, to_device


def resolve_decode(decode, train_set, preset, preprocess, batched):
    """``--decode cpu`` where the fast path cannot serve (rendered data, the ssd preset, nvinfer's preprocessing,
    torchvision's loss) is the v2 pipeline, as before; a choice that cannot be honoured is refused."""
    from .ssd_crop import FAST_PRESETS
    fast_ok = getattr(train_set, "items", None) is not None and preset in FAST_PRESETS and \
        preprocess == "torchvision" and batched
    if decode == "cpu":
        return "cpu" if fast_ok else "cpu-v2"
    if decode == "gpu" and not (batched and preprocess == "torchvision"):
        raise UsageError("--decode gpu needs --loss batched and --preprocess torchvision (nvinfer's 8-bit stretch is "
                         "computed on the CPU)")
    return decode


def build_train_input(train_set, meta, decode, preset, preprocess, batched, seed, device):
    size = tuple(meta.input_size)
    decode = resolve_decode(decode, train_set, preset, preprocess, batched)
    if decode == "gpu":
        if device.type != "cuda":
            raise UsageError("--decode gpu needs a CUDA device (nvJPEG); this run is on {}".format(device))
        from .gpu_input import EncodedDetection, collate_encoded, decode_batch

        def decoded(batch):
            data, ends, crops, flips, boxes, labels, valid = batch
            return (decode_batch(data, ends, crops, flips, size, device),) + tuple(
                t.to(device, non_blocking=True) for t in (boxes, labels, valid))
        return TrainInput(EncodedDetection(train_set, preset, size, seed), collate_encoded, decoded)
    if decode == "cpu":
        from .decoded_crops import DecodedCrops
        return TrainInput(DecodedCrops(train_set, preset, size, seed), collate_batch, copied(device))
    nvinfer_size = size if preprocess == "nvinfer" else None
    data = TorchDetection(train_set, train_transform(preset, meta.image_mean, nvinfer_size,
                                                     size if batched else None), seed)
    if batched:
        return TrainInput(data, collate_batch, copied(device))
    return TrainInput(data, collate, None)


def train_loader(source, batch, sampler, workers, pin_memory):
    """The DataLoader the trainer runs over ``source`` (a TrainInput), one iterator for the whole run when
    ``sampler`` is an EpochsSampler; the benchmarks time this very loader."""
    return torch.utils.data.DataLoader(source.dataset, batch, sampler=sampler, drop_last=True, num_workers=workers,
                                       collate_fn=source.collate_fn, pin_memory=pin_memory,
                                       prefetch_factor=4 if workers > 0 else None)


def training_stream(loader, batched, to_device, device):
    """The loader's batches, an unreadable image raised as one DatasetError, and (batched) each put on the device
    one ahead of the step."""
    from .transforms import checked
    batches = checked(loader)
    return ahead_on_device(batches, to_device or copied(device), device) if batched else batches


def copied(device):
    def to_device(batch):
        return tuple(t.to(device, non_blocking=True) for t in batch)
    return to_device


def ahead_on_device(batches, to_device, device, depth=2):
    """Yield ``to_device(batch)`` for each batch, prepared ahead of the caller's step (CUDA); elsewhere one at a
    time in the caller's thread.

    On CUDA a thread of ours pulls the loader's batches and prepares each on a stream of its own, up to ``depth``
    batches ahead, while the caller's thread keeps launching the step's kernels. A thread, not just a side stream:
    nvJPEG's batched decode returns only when the batch is decoded (torchvision's decode_jpegs_cuda.cpp
    synchronises its stream before returning), and receiving a batch from the loader's workers takes the main
    thread's time too; both now overlap the step instead of standing between two steps. torch's operators release
    the GIL while they run (torch/csrc/jit/python/pybind_utils.h, invokeOperatorFromPython), so the two threads
    run in parallel where it counts. The step waits for its own batch's event only, and tensors made on our stream
    are marked as used by the step's stream (record_stream), so the allocator recycles them only after the step
    has read them."""
    if device.type != "cuda":
        for batch in batches:
            yield to_device(batch)
        return
    main = torch.cuda.current_stream(device)
    index = device.index if device.index is not None else torch.cuda.current_device()

    def prepared():
        torch.cuda.set_device(index)  # the current device is per thread
        side = torch.cuda.Stream(device)
        with torch.cuda.stream(side):
            for batch in batches:
                out = to_device(batch)
                done = torch.cuda.Event()
                done.record(side)
                yield out, done

    for out, done in produced_ahead(prepared, depth):
        main.wait_event(done)
        for t in out:
            t.record_stream(main)
        yield out


_PRODUCERS = {}  # thread -> its stop event, for the threads still running


@atexit.register
def _stop_producers():
    """Stop and join the producing threads before the interpreter finalises: a daemon thread still inside the
    loader or a CUDA call when Python tears down aborts the process ("terminate called without an active
    exception", seen on the H200 at the end of benchmarks/train_speed.py). Registered after torch.utils.data's own
    exit hook, so it runs first, while the loader's workers still serve."""
    for stop in list(_PRODUCERS.values()):
        stop.set()
    for thread in list(_PRODUCERS):
        thread.join(timeout=10)


def produced_ahead(make, depth):
    """The items of the iterator ``make()`` returns, produced by a thread of their own up to ``depth`` items ahead
    of the caller. An exception in that thread (an unreadable image, a failed decode) is raised in the caller's;
    when the caller stops early, or the interpreter exits, the thread stops at its next item."""
    import queue
    import threading
    ready, stop, end = queue.Queue(maxsize=depth), threading.Event(), object()

    def put(item):
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in make():
                if not put((item,)):
                    return
            put(end)
        except BaseException as e:  # by design: whatever stops the thread is the caller's to raise
            put(e)
        finally:
            _PRODUCERS.pop(threading.current_thread(), None)

    thread = threading.Thread(target=produce, name="edgeexport-ahead", daemon=True)
    _PRODUCERS[thread] = stop
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item[0]
    finally:
        stop.set()
