"""What feeds the training step, chosen once: the dataset the loader workers index, how they collate, and what the
main process does with a batch to put it on the device (the trainer and benchmarks/train_speed.py share this).

    --decode cpu     (default) image files: workers decode, crop, resize and flip (edgeexport.train.decoded_crops)
    --decode gpu     JPEG files: workers read bytes; nvJPEG and the GPU do the rest (edgeexport.train.gpu_input),
                     with --cpu-decode-share, the workers decode that share of each batch as --decode cpu does
    --crop-on gpu    with cpu or gpu: what the workers decode, they only cut the crop out of, and the GPU resizes
                     and flips it with the rest of the batch (edgeexport.train.gpu_input)
    --decode-scale reduced
                     with cpu: a JPEG whose crop is at least twice the network's size is decoded at 1/2, 1/4 or
                     1/8 of its size by libjpeg's DCT scaling (edgeexport.train.decoded_crops), for big photos
    --decode cpu-v2  torchvision's v2 transforms on what the dataset returns: every preset, nvinfer's
                     preprocessing, rendered datasets, torchvision's own loss (edgeexport.train.transforms)

On CUDA a thread of ours receives the next batches and copies (or decodes) them on a stream of its own while the
main thread launches the step: a batch of 256 uint8 images at 320x320 is 79 MB, a few milliseconds of PCIe, and
nvJPEG's batched decode of 256 photos blocks its caller for its whole length; neither now stands between two steps.
The step tells the stream when its backward begins (``start_next()``): the thread starts the next batch then.
"""
import atexit
import collections
import os
import queue
import threading
import time

import torch

from ..device.errors import DatasetError, UsageError
from .transforms import TorchDetection, collate, collate_batch, train_transform

DECODE_CHOICES = ("cpu", "gpu", "cpu-v2")
CROP_CHOICES = ("cpu", "gpu")
SCALE_CHOICES = ("full", "reduced")


class TrainInput(object):
    """``dataset`` and ``collate_fn`` for the DataLoader; ``to_device(batch)`` -> the batched step's inputs (None
    for torchvision's per-image loss, whose loop moves its own lists); ``phases``: where to_device times its own
    phases, if it does."""

    def __init__(self, dataset, collate_fn, to_device, phases=None):
        self.dataset, self.collate_fn, self.to_device = dataset, collate_fn, to_device
        self.phases = phases  # --decode gpu: (decode, crop) seconds of the last batches, from decode_batch
        self.flags = {}  # build_train_input's: the resolved --decode, --crop-on, --decode-scale, device type
        self.items = None


def resolve_decode(decode, train_set, preset, preprocess, batched, crop_on="cpu"):
    """``--decode cpu`` where the fast path cannot serve (rendered data, the ssd preset, nvinfer's preprocessing,
    torchvision's loss) is the v2 pipeline, as before; a choice that cannot be honoured is refused."""
    from .ssd_crop import FAST_PRESETS
    fast_ok = getattr(train_set, "items", None) is not None and preset in FAST_PRESETS and \
        preprocess == "torchvision" and batched
    if crop_on == "gpu" and decode == "cpu-v2":
        raise UsageError("--crop-on gpu takes --decode cpu or gpu; cpu-v2 crops in torchvision's v2 transforms")
    if decode == "cpu" and crop_on == "cpu":
        return "cpu" if fast_ok else "cpu-v2"
    if decode in ("gpu", "cpu") and not (batched and preprocess == "torchvision"):
        raise UsageError("--decode {} needs --loss batched and --preprocess torchvision (nvinfer's 8-bit stretch is "
                         "computed on the CPU)".format("gpu" if decode == "gpu" else "cpu --crop-on gpu"))
    return decode


def build_train_input(train_set, meta, decode, preset, preprocess, batched, seed, device, cpu_share=0.0,
                      crop_on="cpu", decode_scale="full"):
    """The TrainInput for ``decode``; ``cpu_share`` (--decode gpu): the fraction of each batch the loader workers
    decode on the CPU, the rest nvJPEG's; ``crop_on`` "gpu": the workers cut the crops out, the GPU resizes them;
    ``decode_scale`` "reduced": the workers decode big JPEGs at the DCT scale their crop allows. Its ``flags``: what
    the run's input really is (--decode cpu may have fallen back to cpu-v2), for input_advice."""
    decode = resolve_decode(decode, train_set, preset, preprocess, batched, crop_on)
    source = made_input(train_set, meta, decode, preset, preprocess, batched, seed, device, cpu_share, crop_on,
                        decode_scale)
    source.flags = {"decode": decode, "crop_on": crop_on, "decode_scale": decode_scale, "device": device.type}
    source.items = getattr(train_set, "items", None)  # (path, boxes, labels) of an image folder, else None
    return source


def made_input(train_set, meta, decode, preset, preprocess, batched, seed, device, cpu_share, crop_on, decode_scale):
    size = tuple(meta.input_size)
    if cpu_share and decode != "gpu":
        raise UsageError("--cpu-decode-share divides a batch between the CPU and nvJPEG: it needs --decode gpu, and "
                         "this run decodes with {}".format(decode))
    reduced = decode_scale == "reduced"
    if reduced and decode != "cpu":
        # nvJPEG decodes at full size: a batch would mix two kinds of pixels; the v2 pipeline decodes with PIL
        raise UsageError("--decode-scale reduced is --decode cpu's (the loader workers' libjpeg); this run decodes "
                         "with {}{}".format(decode, " (--decode cpu falls back to cpu-v2 for rendered data, the ssd "
                                            "preset, --preprocess nvinfer, --loss torchvision)"
                                            if decode == "cpu-v2" else ""))
    if decode == "gpu" or crop_on == "gpu":
        if device.type != "cuda":
            raise UsageError("--{} needs a CUDA device; this run is on {}".format(
                "decode gpu" if decode == "gpu" else "crop-on gpu", device))
        if decode == "cpu":
            cpu_share = 1.0  # every sample decoded by the workers, none by nvJPEG
        from .gpu_input import EncodedDetection, collate_encoded, decode_batch
        phases = collections.deque(maxlen=1000)

        def decoded(batch):
            return (decode_batch(batch, size, device, phases),) + tuple(
                t.to(device, non_blocking=True) for t in (batch.boxes, batch.labels, batch.valid))
        # pinned, though nvJPEG reads the files' bytes from wherever they are: the loader's pinning thread then
        # receives each batch from the workers, which took the preparing thread 9.6 ms a batch (median) when it
        # did so itself, 0.5 ms with the pinning thread (H200, compiled step: benchmarks/results/
        # h200_jpeg_train_speed_1205a.json, jpeg:gpu+compile against jpeg:gpu+cpu+compile, then the only pinned row)
        return TrainInput(EncodedDetection(train_set, preset, size, seed, cpu_share, crop_on == "gpu", reduced),
                          collate_encoded, decoded, phases=phases)
    if decode == "cpu":
        from .decoded_crops import DecodedCrops
        return TrainInput(DecodedCrops(train_set, preset, size, seed, reduced), collate_batch, copied(device))
    nvinfer_size = size if preprocess == "nvinfer" else None
    data = TorchDetection(train_set, train_transform(preset, meta.image_mean, nvinfer_size,
                                                     size if batched else None), seed)
    if batched:
        return TrainInput(data, collate_batch, copied(device))
    return TrainInput(data, collate, None)


# An epoch whose step waited this share of its time or more for its batches was paced by its input: the trainer then
# names, once, the flags that would feed it faster (input_advice).
ADVISE_FROM = 0.3


def typical_photo(items, count=8):
    """(width, height) of the median of the first ``count`` images' headers that read, or None."""
    from ..data.common import image_size
    sizes = []
    for path, _, _ in items[:count]:
        try:
            sizes.append(image_size(path))
        except DatasetError:  # a file that does not read is the loader's to name, not the advice's
            continue
    return sorted(sizes)[len(sizes) // 2] if sizes else None


def input_advice(source, wait_share, epoch, workers, input_size, cores=None):
    """One line naming what may feed the step faster, of what applies to this run (``source``: build_train_input's),
    when the step waited ``wait_share`` of ``epoch`` for its batches; None below ADVISE_FROM or with nothing to
    try. ``input_size``: the network's (H, W); ``cores``: this process's share of the CPU cores."""
    flags, cores = source.flags, cores or os.cpu_count() or 1
    if wait_share < ADVISE_FROM or not flags:
        return None
    tips = []
    if workers < cores - 1:
        tips.append("--workers {} ({} CPU cores for this process; it has {})".format(cores - 1, cores, workers))
    decode, cuda = flags["decode"], flags["device"] == "cuda"
    if decode == "cpu-v2" and source.items is not None:
        tips.append("--decode cpu (4-6x the samples a worker; it takes --data-augmentation ssdlite, hflip or none, "
                    "--preprocess torchvision and --loss batched)")
    if decode == "cpu" and flags["decode_scale"] == "full" and source.items is not None:
        photo = typical_photo(source.items)
        if photo is not None and photo[0] >= 2 * input_size[1] and photo[1] >= 2 * input_size[0]:
            tips.append("--decode-scale reduced (photos of {}x{} for an input of {}x{}; held-out mAP 0.007 lower on "
                        "average, twice as spread between seeds, measured)".format(
                            photo[0], photo[1], input_size[1], input_size[0]))
    if decode == "cpu" and cuda and flags["crop_on"] == "cpu":
        tips.append("--crop-on gpu (the GPU resizes the crops)")
    if decode == "cpu" and cuda:
        tips.append("--decode gpu (nvJPEG decodes; the workers only read the files)")
    if not tips:
        return None
    return "input wait {:.0%} in epoch {}: the input, not the step, set the pace; to try: {}".format(
        wait_share, epoch, "; ".join(tips))


def train_loader(source, batch, sampler, workers, pin_memory):
    """The DataLoader the trainer runs over ``source`` (a TrainInput), one iterator for the whole run when
    ``sampler`` is an EpochsSampler; the benchmarks time this very loader. ``pin_memory``: the batches go to a
    GPU (pinned, every input's: --decode gpu's too, see build_train_input)."""
    return torch.utils.data.DataLoader(source.dataset, batch, sampler=sampler, drop_last=True, num_workers=workers,
                                       collate_fn=source.collate_fn, pin_memory=pin_memory,
                                       prefetch_factor=4 if workers > 0 else None)


def training_stream(loader, batched, to_device, device):
    """The loader's batches, an unreadable image raised as one DatasetError, and (batched) each put on the device
    ahead of the step (ahead_on_device: call its ``start_next()`` as the step's backward begins)."""
    from .transforms import checked
    batches = checked(loader)
    return ahead_on_device(batches, to_device or copied(device), device) if batched else InCallersThread(batches)


def copied(device):
    def to_device(batch):
        return tuple(t.to(device, non_blocking=True) for t in batch)
    return to_device


def ahead_on_device(batches, to_device, device, depth=2):
    """The batches as ``to_device(batch)``, prepared ahead of the caller's step on CUDA (elsewhere one at a time in
    the caller's thread): an iterator whose ``start_next()`` the step calls as its backward begins.

    On CUDA a thread of ours pulls the loader's batches and prepares each on a stream of its own while the caller's
    thread launches the step. A thread, not just a side stream: nvJPEG's batched decode returns only when the batch
    is decoded (torchvision's decode_jpegs_cuda.cpp synchronises its stream before returning), and receiving a
    batch from the loader's workers takes the main process's time too. The step waits for its own batch's event
    only, and tensors made on our stream are marked as used by the step's stream (record_stream), so the allocator
    recycles them only after the step has read them.

    When the thread works matters as much as that it does. The eager step keeps the H200 busy for 59.6 of its
    61.8 ms (SSDLite-Large, batch 256), and its forward is launched barely faster than the GPU runs it, so
    whatever holds the GIL while the forward is launched delays the step. The thread's Python (receiving the batch,
    decode_batch's calls, freeing 256 decoded images) held it for about 4 ms a batch, all of it right after the
    step took its batch, i.e. during the forward (py-spy --gil and torch.profiler on the H200:
    benchmarks/results/h200_input_profile_1204c.json). During the backward the launching thread waits in the
    autograd engine's C++ without the GIL (torch/csrc/autograd/python_engine.cpp, THPEngine_run_backward:
    engine.execute under pybind11::gil_scoped_release), so the thread starts each batch then: ``start_next()``.
    With it (and decode_batch's wait, the bytes then unpinned), --decode gpu fed the step at 90 and 93 % of its speed
    alone, against 77 and 83 % for the code before, run in turn with it in the same visit.
    A caller that never calls it still gets every batch: the thread then starts the next one when the step takes
    its batch."""
    if device.type != "cuda":
        return InCallersThread(to_device(batch) for batch in batches)
    main = torch.cuda.current_stream(device)
    index = device.index if device.index is not None else torch.cuda.current_device()

    spans = collections.deque(maxlen=1000)

    def prepared():
        torch.cuda.set_device(index)  # the current device is per thread
        side = torch.cuda.Stream(device)
        received = iter(batches)
        with torch.cuda.stream(side):
            while True:
                t0 = time.perf_counter()
                batch = next(received, None)
                if batch is None:
                    return
                t1 = time.perf_counter()
                out = to_device(batch)
                done = torch.cuda.Event()
                done.record(side)
                spans.append((t1 - t0, time.perf_counter() - t1))
                yield out, done

    def on_step_stream(item):
        out, done = item
        main.wait_event(done)
        for t in out:
            t.record_stream(main)
        return out
    stream = ProducedAhead(prepared, depth, on_step_stream)
    stream.spans = spans
    return stream


def input_timings(stream, skip=0, phases=None):
    """What a stream from ahead_on_device spent per batch, medians in milliseconds after its first ``skip``
    batches: ``wait`` (the step waiting for its batch), and on CUDA, in the preparing thread, ``receive`` (the
    loader's next batch) and ``prepare`` (to_device: the copy, or nvJPEG's decode and the crops, until its kernels
    are queued, or done where it waits for them); with ``phases`` (TrainInput.phases, --decode gpu), ``prepare``'s
    own two: ``decode`` (nvJPEG) and ``crop`` (crops, resize, flip, until done). A step that waits while receive +
    prepare exceed its own time is fed too slowly, whatever the GPU's business."""
    import statistics
    out = {}
    phases = list(phases or ())[skip:]
    if phases:
        out["decode_ms"] = 1000 * statistics.median(d for d, _ in phases)
        out["crop_ms"] = 1000 * statistics.median(c for _, c in phases)
    waits = list(getattr(stream, "waits", ()))[skip:]
    if waits:
        out["wait_ms"] = 1000 * statistics.median(waits)
    spans = list(getattr(stream, "spans", ()))[skip:]
    if spans:
        out["receive_ms"] = 1000 * statistics.median(r for r, _ in spans)
        out["prepare_ms"] = 1000 * statistics.median(p for _, p in spans)
    return out


class WaitedFor(object):
    """How long the caller of an input stream waited for its items: ``waits``, seconds for each of the last items
    (input_timings' medians), ``waited_s`` in all (the trainer's per-epoch share)."""

    def __init__(self):
        self.waits = collections.deque(maxlen=1000)
        self.waited_s = 0.0

    def _waited_since(self, t0):
        self.waits.append(time.perf_counter() - t0)
        self.waited_s += self.waits[-1]


class InCallersThread(WaitedFor):
    """An iterator with ahead_on_device's interface whose items are made when asked for (the wait: making them)."""

    def __init__(self, items):
        super(InCallersThread, self).__init__()
        self.items = iter(items)

    def __iter__(self):
        return self

    def __next__(self):
        t = time.perf_counter()
        item = next(self.items)
        self._waited_since(t)
        return item

    def start_next(self):
        pass


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


def _produce(make, out, stop, grants, end):
    """ProducedAhead's thread: an item into ``out`` per grant, then ``end``, or the exception that stopped it."""
    try:
        items = make()
        while True:
            while not grants.acquire(timeout=0.1):
                if stop.is_set():
                    return
            if stop.is_set():
                return
            try:
                item = next(items)
            except StopIteration:
                break
            out.put((item,))
        out.put(end)
    except BaseException as e:  # by design: whatever stops the thread is the caller's to raise
        out.put(e)
    finally:
        _PRODUCERS.pop(threading.current_thread(), None)


class ProducedAhead(WaitedFor):
    """The items of the iterator ``make()`` returns (each passed through ``received`` in the caller's thread, if
    given), made by a thread of their own at most ``depth`` ahead of the caller. The thread starts an item when
    the caller grants it one: ``depth`` at the start, then one per item the caller takes, granted by
    ``start_next()`` while the caller works on its item or, at the latest, when it takes the next. An exception in
    the thread (an unreadable image, a failed decode) is raised in the caller's; when the caller stops early
    (``close()``), or the interpreter exits, the thread stops at its next item."""

    def __init__(self, make, depth, received=None):
        super(ProducedAhead, self).__init__()
        self._queue, self._stop, self._end = queue.Queue(), threading.Event(), object()
        self._grants = threading.Semaphore(depth)
        self._granted, self._done = True, False  # before the first item, nothing is owed
        self._received = received
        # the thread holds the queue, events and semaphore, not self: a caller that drops this iterator without
        # close() lets __del__ stop the thread, which frees the loader and its workers (a bound method as the
        # target kept both alive for as long as the process: benchmarks/train_speed.py's later rows ran beside
        # the earlier rows' threads and workers)
        self._thread = threading.Thread(target=_produce, name="edgeexport-ahead", daemon=True, args=(
            make, self._queue, self._stop, self._grants, self._end))
        _PRODUCERS[self._thread] = self._stop
        self._thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        self.start_next()
        self._granted = False
        t = time.perf_counter()
        item = self._queue.get()
        if item is self._end or isinstance(item, BaseException):
            self.close()
            if item is self._end:
                raise StopIteration
            raise item
        self._waited_since(t)
        return self._received(item[0]) if self._received is not None else item[0]

    def start_next(self):
        """Let the thread start the next item now (once per item taken; later calls do nothing)."""
        if not self._granted:
            self._granted = True
            self._grants.release()

    def close(self):
        self._done = True
        self._stop.set()

    def __del__(self):
        self._stop.set()
