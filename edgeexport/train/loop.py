"""One training epoch and one evaluation pass."""
import math
import os
import time

import numpy as np
import torch
from tqdm import tqdm

from ..device.errors import TrainingError
from .transforms import checked

# Without a terminal (a log file, CI, the demo piped through tee) tqdm draws nothing: print a plain line this often.
LOG_EVERY_S = float(os.environ.get("EDGEEXPORT_LOG_EVERY_S", "20"))
LOSS_EVERY = 20  # steps between reads of the loss (each read waits for the GPU)


class Progress(object):
    """tqdm on a terminal; elsewhere one plain line every LOG_EVERY_S seconds, so a long epoch never looks hung."""

    def __init__(self, iterable, desc, show=True, total=None):
        import sys
        self.iterable, self.desc, self.total = iterable, desc, total if total is not None else len(iterable)
        self.tty = show and sys.stderr.isatty()
        self.show = show
        self.bar = tqdm(iterable, desc=desc, total=self.total, leave=False, dynamic_ncols=True) if self.tty else None
        self.postfix, self.last = {}, time.perf_counter()

    def __iter__(self):
        for i, item in enumerate(self.bar if self.bar is not None else self.iterable):
            yield item
            if self.show and self.bar is None and time.perf_counter() - self.last >= LOG_EVERY_S:
                self.last = time.perf_counter()
                print("  {} {}/{} {}".format(self.desc, i + 1, self.total, " ".join(
                    "{}={}".format(k, v) for k, v in self.postfix.items())), flush=True)

    def set_postfix(self, **kw):
        self.postfix = kw
        if self.bar is not None:
            self.bar.set_postfix(**kw)

    def close(self):
        if self.bar is not None:
            self.bar.close()


# torch.compile's modes that --compile-mode offers (torch.compile's docstring lists them; max-autotune alone, with
# CUDA graphs and autotuning both, is left out: minutes more of compilation for the same graphs)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs")


def train_one_epoch(model, optimizer, scheduler, loader, device, epoch, scaler=None, world=1,
                    show_progress=True, max_grad_norm=None, batched=False, amp=False, amp_dtype=torch.bfloat16,
                    params=None, to_device=None, steps=None, graphs=False):
    """One epoch. ``model``: with ``batched``, an SSDTrainStep (or its DDP wrapper) taking what ``to_device`` makes
    of a loader batch (edgeexport.train.train_input; default: each tensor copied); else torchvision's SSD on lists of
    images. ``loader``: one epoch's host batches; or, with ``steps``, the run's stream of batches already checked
    and on the device (edgeexport.train.train_input.training_stream), of which this epoch takes ``steps``.
    ``graphs``: the model is compiled with mode reduce-overhead (CUDA graphs): each step is marked as a new
    iteration, after which the last one's outputs may be overwritten (read before, as loss_sum is).
    Returns {"loss", "images_per_s", "seconds", "input_wait_s"} for this process (input_wait_s: how long the step
    waited for its batches, where the stream counts it). The loss is summed on the device and read back
    every LOSS_EVERY steps only: a read is a sync, and a sync per step leaves the GPU waiting for Python."""
    import itertools
    model.train()
    seen, t0 = 0, time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    last_read, read_loss = 0, float("nan")
    params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
    if steps is None:
        from .train_input import training_stream
        steps = len(loader)
        batches = training_stream(loader, batched, to_device, device)
    else:
        batches = loader
    start_next = getattr(batches, "start_next", lambda: None)
    waited_before = getattr(batches, "waited_s", None)
    bar = Progress(out_of_memory_as_error(itertools.islice(batches, steps), device), "epoch {}".format(epoch),
                   show_progress, total=steps)
    steps_done = 0
    for batch in bar:
        try:
            if graphs:
                torch.compiler.cudagraph_mark_step_begin()
            if batched:
                images, boxes, labels, valid = batch
                n = images.shape[0]
                with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=amp):
                    losses = model(images, boxes, labels, valid)
            else:
                # channels_last is applied to the model's weights: torchvision batches these CHW images itself,
                # and the convolutions then run NHWC.
                images, targets = batch
                n = len(images)
                images = [im.to(device, non_blocking=True) for im in images]
                targets = [{"boxes": t["boxes"].to(device), "labels": t["labels"].to(device)} for t in targets]
                with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=amp):
                    losses = model(images, targets)
            loss = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            start_next()  # the backward is launched without the GIL: the time for the next batch's Python
            if scaler is not None:
                scaler.scale(loss).backward()
                if max_grad_norm:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                if max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                optimizer.step()
        except torch.cuda.OutOfMemoryError:
            raise TrainingError(out_of_memory(device, batch)) from None
        scheduler.step()
        loss_sum += loss.detach().float()
        seen += n * world
        steps_done += 1
        if steps_done == 1 or steps_done - last_read >= LOSS_EVERY or steps_done == steps:
            total = loss_sum.item()
            if not math.isfinite(total):
                raise TrainingError(
                    "the loss diverged at epoch {}, between steps {} and {} (loss {}; last step's terms: {}): "
                    "lower --lr, lengthen --warmup-iters, or pass --clip-grad-norm 10".format(
                        epoch, last_read + 1, steps_done, total,
                        ", ".join("{} {:.4g}".format(k, float(v.detach())) for k, v in sorted(losses.items()))))
            read_loss, last_read = total / steps_done, steps_done
        bar.set_postfix(loss="{:.3f}".format(read_loss), img_s="{:.1f}".format(seen / (time.perf_counter() - t0)),
                        lr="{:.4f}".format(optimizer.param_groups[0]["lr"]))
    bar.close()
    seconds = time.perf_counter() - t0
    total = loss_sum.item()
    if not math.isfinite(total):  # unreachable while the last step's read above catches it; kept as the guard
        raise TrainingError("the loss diverged at epoch {} (loss {}): lower --lr".format(epoch, total))
    waited = None if waited_before is None else batches.waited_s - waited_before
    return {"loss": total / max(steps_done, 1), "images_per_s": seen / seconds, "seconds": seconds,
            "input_wait_s": waited}


def out_of_memory(device, batch):
    """One line for a step that did not fit on the GPU (``batch``: its inputs; None: the memory ran out while the
    next batch was being decoded or copied onto the GPU): the batch size per GPU, the card, what to do."""
    if batch is None:
        where = "while preparing the next batch (decoding or copying it onto the GPU)"
    else:
        where = "at a batch of {} images per GPU".format(len(batch[0]) if isinstance(batch, (tuple, list)) else "?")
    card = ""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        card = " on {} ({:.0f} GiB)".format(props.name, props.total_memory / 2 ** 30)
    return ("out of GPU memory {}{}: lower -b/--batch-size (halve it), or train with --amp (bf16) if it is "
            "off".format(where, card))


def out_of_memory_as_error(batches, device):
    """``batches``, with an out-of-memory raised while one is prepared (train_input's thread decodes and copies
    ahead of the step, outside the step's own guard) turned into the same one-line TrainingError."""
    try:
        for batch in batches:
            yield batch
    except torch.cuda.OutOfMemoryError:
        raise TrainingError(out_of_memory(device, None)) from None


@torch.no_grad()
def predict(model, loader, device, show_progress=True):
    """Run the torchvision model's own eval path; returns (ground truths, detections) as numpy dicts."""
    model.eval()
    gts, dts = [], []
    for images, targets in Progress(checked(loader), "eval", show_progress, total=len(loader)):
        outputs = model([im.to(device) for im in images])
        for t, o in zip(targets, outputs):
            gts.append({"boxes": t["boxes"].numpy(), "labels": t["labels"].numpy()})
            dts.append({k: o[k].float().cpu().numpy() for k in ("boxes", "labels", "scores")})
    return gts, dts


def evaluate(model, loader, device, num_classes, show_progress=True):
    from .coco_map import coco_map
    gts, dts = predict(model, loader, device, show_progress)
    out = coco_map(gts, dts, num_classes)
    out["detections_per_image"] = float(np.mean([len(d["boxes"]) for d in dts]))
    return out
