"""Training throughput, side by side in one run: the project's trainer step against a step written the way
torchvision's detection reference trains SSD (same model, same batch, same data), and the network's own forward
and backward as the ceiling.

    python benchmarks/train_speed.py --arch ssdlite320_mobilenet_v3_large --batch-sizes 64 128 256 --json out.json

Rows per batch size:
- ``reference``: torchvision's SSD on a list of float images, its own transform and per-image loss (the detection
  reference's train_one_epoch: autocast, GradScaler, SGD);
- ``ours``: edgeexport.train's step: the uint8 batch, SSDTrainStep (batched loss), channels-last, bf16 autocast,
  fused SGD (``--compile`` adds the row ``ours+compile``: the step under torch.compile, and how far one compiled
  step's losses and gradients are from the eager step's, beside how far the eager step is from float64);
- ``ours+loader``: the same step fed by the trainer's own DataLoader (synthetic set rendered once, workers,
  pinned memory): what a training run gets end to end;
- ``jpeg:cpu``, ``jpeg:gpu``, ``jpeg:cpu-v2`` (with ``--data-path``, a VOC folder of JPEGs such as
  ``python -m edgeexport.data.make_voc`` writes): the same step fed from the files by the trainer's own input
  pipeline for that ``--decode`` (edgeexport.train.train_input: DataLoader workers, SSD's IoU crop and flip, the
  next batch put on the device while the step runs), in steady state (one loader across passes, as the trainer);
  ``jpeg:gpu+cpu`` is ``--decode gpu`` with ``--cpu-decode-share`` of each batch decoded by the workers;
  ``+gpucrop`` (``jpeg:cpu+gpucrop``, ``jpeg:gpu+cpu+gpucrop``) adds ``--crop-on gpu``: the workers cut the crops
  out and the GPU resizes them; ``+reduced`` (``jpeg:cpu+reduced``, ``jpeg:cpu+reduced+gpucrop``) adds
  ``--decode-scale reduced``: big JPEGs decoded at the DCT scale their crop allows; ``--compile`` adds each of these
  rows' ``+compile`` (not cpu-v2's);
- ``network``: the backbone and head forward + backward alone, with a stand-in loss: the bound.

Images per second, GPU busy (CUDA time the profiler records over the steps' wall time), peak memory; for the rows fed
from a folder, the medians per batch of the time the step waited for it and, on CUDA, of the preparing thread's
receiving and preparing it (edgeexport.train.train_input.input_timings). Data for the in-memory rows is rendered
once and kept on the device, so those rows measure the step alone.
"""
import contextlib
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edgeexport.device.cli import (MAX_ITERATIONS, ArgumentParser, batch_size, image_count, int_range,  # noqa: E402
                                   iterations, output_file, probability, run_cli, worker_count)
from edgeexport.device.meta import ARCHS  # noqa: E402
from edgeexport.train.loop import COMPILE_MODES  # noqa: E402
from edgeexport.model.torch_device import default_device, torch_device  # noqa: E402


def make_batch(n, size, seed, num_classes=3):
    from edgeexport.data import SyntheticShapes
    ds = SyntheticShapes(n, num_classes, seed=seed, image_size=size).prerender(4)
    images, targets = [], []
    for i in range(n):
        img, t = ds[i]
        images.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        targets.append({"boxes": torch.from_numpy(t["boxes"]), "labels": torch.from_numpy(t["labels"])})
    return torch.stack(images), targets


def build(arch, device, channels_last):
    from edgeexport.device.meta import ModelMeta
    from edgeexport.model import build_ssdlite
    model = build_ssdlite(ModelMeta(arch, ["circle", "square", "triangle"])).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def wall_per_step(step, steps, warmup, device):
    """Seconds of wall time per call of ``step``, over ``steps`` calls after ``warmup``."""
    for _ in range(warmup):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - t) / steps


def loader_warmup(warmup, workers):
    """Warm-up steps for a row fed by a DataLoader. Each worker builds whole batches: the first arrive together
    after one batch's work, and the loader settles only once every worker has delivered a few. Timing from there
    is meant to measure the steady state an epoch runs in: on the H200, 30 steps after 10 of warm-up gave 2,096
    img/s for jpeg:cpu while the trainer's epochs with the same pipeline ran at 3,837-4,024 (the start-up, by this
    reasoning; not re-measured with the longer warm-up)."""
    return max(warmup, 3 * workers)


def timed(step, steps, warmup, device, profile_steps=3):
    """(images per step call's wall seconds, GPU busy fraction)."""
    wall = wall_per_step(step, steps, warmup, device)
    busy = None
    if device.type == "cuda":
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            t = time.perf_counter()
            for _ in range(profile_steps):
                step()
            sync(device)
            span = time.perf_counter() - t
        cuda_us = sum(e.device_time_total for e in prof.key_averages() if e.device_time_total > 0 and
                      not e.key.startswith("ProfilerStep"))
        busy = min(1.0, cuda_us / 1e6 / span)
    return wall, busy


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def reference_step(model, images, targets, device, amp):
    """torchvision/references/detection train_one_epoch: list of float images, model(images, targets)."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=4e-5)
    scaler = torch.amp.GradScaler("cuda") if amp and device.type == "cuda" else None
    imgs = [im.to(device).float() / 255.0 for im in images]
    tgts = [{k: v.to(device) for k, v in t.items()} for t in targets]

    def step():
        with torch.autocast(device_type=device.type, enabled=scaler is not None):
            losses = model(imgs, tgts)
            loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        loss.item()  # the reference reads the loss every step (its logger)
    return step


def our_update(model, device, amp, compile_backend=None, before_backward=None, compile_mode=None):
    """The trainer's update: SSDTrainStep (normalise, network, batched loss) under bf16, fused SGD.
    Returns update(images_uint8, boxes, labels, valid) for one batch already on the device; ``before_backward``
    is called where the trainer tells its input stream that the backward begins."""
    from edgeexport.train.ssd_loss import SSDTrainStep
    step_module = SSDTrainStep(model).to(device)
    if compile_backend:
        step_module = torch.compile(step_module, backend=compile_backend, mode=compile_mode)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=4e-5,
                          **({"fused": True} if device.type == "cuda" else {}))

    graphs = compile_backend and compile_mode == "reduce-overhead"

    def update(x, boxes, labels, valid):
        if graphs:  # a new iteration: the last step's graph outputs (loss, gradients) may be overwritten now
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            losses = step_module(x, boxes, labels, valid)
            loss = losses["bbox_regression"] + losses["classification"]
        opt.zero_grad(set_to_none=True)
        if before_backward is not None:
            before_backward()
        loss.backward()
        opt.step()
    return update


def our_step(model, images, targets, device, amp, compile_backend=None, compile_mode=None):
    from edgeexport.train.ssd_loss import pad_targets
    update = our_update(model, device, amp, compile_backend, compile_mode=compile_mode)
    x = images.to(device)
    boxes, labels, valid = pad_targets(targets, device)
    return lambda: update(x, boxes, labels, valid)


def compile_agreement(arch, device, images, targets, amp, backend):
    """How far torch.compile's step is from the eager step on one batch, both from the same weights, and, as the
    yardstick, how far the eager step itself is from the same step in float64 without autocast. Each is the larger
    relative difference of the two loss terms, and |grad - grad_ref| / |grad_ref| over all parameters together.
    Not parameter by parameter: a bias that a train-mode BatchNorm follows has a gradient that is zero but for
    rounding (about 1e-7), so its own relative difference is noise of order 1. One forward and backward each,
    no optimizer step."""
    import copy
    from edgeexport.train.ssd_loss import SSDTrainStep, pad_targets
    torch.manual_seed(0)
    eager = build(arch, device, channels_last=device.type == "cuda")
    compiled, exact = copy.deepcopy(eager), copy.deepcopy(eager).double()
    boxes, labels, valid = pad_targets(targets, device)

    def run(model, step, x, boxes, autocast):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
            losses = step(x, boxes, labels, valid)
        (losses["bbox_regression"] + losses["classification"]).backward()
        return ({k: v.detach().double() for k, v in losses.items()},
                torch.cat([p.grad.double().flatten() for p in model.parameters() if p.grad is not None]))

    def differ(a, b):
        loss = max(float((a[0][k] - b[0][k]).abs() / b[0][k].abs().clamp_min(1e-12)) for k in b[0])
        return loss, float((a[1] - b[1]).norm() / b[1].norm()) if a[1].shape == b[1].shape else float("inf")

    x = images.to(device)
    autocast = amp and device.type == "cuda"
    e = run(eager, SSDTrainStep(eager).to(device), x, boxes, autocast)
    c = run(compiled, torch.compile(SSDTrainStep(compiled).to(device), backend=backend), x, boxes, autocast)
    # SSDTrainStep takes a float batch as already in [0, 1]
    f = run(exact, SSDTrainStep(exact).to(device), x.double() / 255.0, boxes.double(), False)
    (loss_rel, grad_rel), (loss_ref, grad_ref) = differ(c, e), differ(e, f)
    return {"loss_rel_diff": loss_rel, "grad_rel_diff": grad_rel, "eager_vs_float64_loss_rel_diff": loss_ref,
            "eager_vs_float64_grad_rel_diff": grad_ref}


def loader_step(model, batch, size, device, amp, workers, n_images):
    """The trainer's own input pipeline (synthetic set rendered once, DataLoader workers, pinned memory) into
    our step; one call = one batch."""
    from edgeexport.data import SyntheticShapes
    from edgeexport.train.transforms import TorchDetection, collate_batch, train_transform
    data = TorchDetection(SyntheticShapes(n_images, 3, seed=11, image_size=size).prerender(max(1, workers)),
                          train_transform("hflip", [0.5] * 3, None, size))
    loader = torch.utils.data.DataLoader(data, batch, shuffle=True, drop_last=True, num_workers=workers,
                                         collate_fn=collate_batch, pin_memory=device.type == "cuda",
                                         persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
    update = our_update(model, device, amp)
    state = {"it": iter(loader)}

    def step():
        try:
            b = next(state["it"])
        except StopIteration:
            state["it"] = iter(loader)
            b = next(state["it"])
        update(*(t.to(device, non_blocking=True) for t in b))
    return step


def jpeg_loader(voc, decode, batch, workers, device, pin_memory, cpu_share=0.0, crop_on="cpu", decode_scale="full"):
    """The trainer's input (TrainInput) for ``--decode decode`` (``cpu_share``: --cpu-decode-share, ``crop_on``:
    --crop-on, ``decode_scale``: --decode-scale) on a VOC folder with SSD's crop and flip, and the trainer's loader
    over it, endless (one iterator across passes, as the trainer runs)."""
    from edgeexport.device.meta import ModelMeta
    from edgeexport.train.train_input import build_train_input, train_loader
    from edgeexport.train.transforms import EpochsSampler
    source = build_train_input(voc, ModelMeta("ssdlite320_mobilenet_v3_large", voc.labels), decode, "ssdlite",
                               "torchvision", True, 0, device, cpu_share, crop_on, decode_scale)
    return source, train_loader(source, batch, EpochsSampler(len(voc), batch, 0, 10 ** 6, 0), workers, pin_memory)


def jpeg_step(model, batch, device, amp, workers, data_path, decode, compile_backend=None, compile_mode=None,
              cpu_share=0.0, crop_on="cpu", decode_scale="full"):
    """The trainer's input pipeline for ``--decode decode`` on the JPEG folder at ``data_path`` into our step."""
    from edgeexport.data import VOCDetection
    from edgeexport.train.train_input import training_stream
    source, loader = jpeg_loader(VOCDetection(data_path), decode, batch, workers, device, device.type == "cuda",
                                 cpu_share, crop_on, decode_scale)
    stream = training_stream(loader, True, source.to_device, device)
    update = our_update(model, device, amp, compile_backend, stream.start_next, compile_mode)
    return FedStep(stream, update, source.phases)


class FedStep(object):
    """One update on the stream's next batch; ``timings(skip)``: what the stream spent per batch after the first
    ``skip`` (edgeexport.train.train_input.input_timings)."""

    def __init__(self, stream, update, phases=None):
        self.stream, self.update, self.phases = stream, update, phases

    def __call__(self):
        self.update(*next(self.stream))

    def timings(self, skip):
        from edgeexport.train.train_input import input_timings
        return input_timings(self.stream, skip, self.phases)


def input_columns(timings):
    """'  input ms/batch: waited W, received R, prepared P, of which decoded D, cropped C' for a fed row (medians;
    what was timed), '' for the others."""
    if not timings:
        return ""
    names = (("wait_ms", "waited"), ("receive_ms", "received"), ("prepare_ms", "prepared"), ("decode_ms", "of which"
             " decoded"), ("crop_ms", "cropped"))
    return "  input ms/batch: " + ", ".join("{} {:.1f}".format(label, timings[k]) for k, label in names
                                            if k in timings)


def network_step(model, images, device, amp):
    """Backbone + head forward and backward with a stand-in loss: what the network alone costs."""
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    x = ((images.to(device).float() / 255.0) - mean) / std
    if next(model.parameters()).is_contiguous(memory_format=torch.channels_last):
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, **({"fused": True} if device.type == "cuda" else {}))

    def step():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            head = model.head(list(model.backbone(x).values()))
            loss = head["cls_logits"].float().mean() + head["bbox_regression"].float().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def fed_steps(rows):
    """(input row, the step row it feeds) for one batch size's rows in the order they ran: each input pipeline
    against the step alone measured in this run, compiled against compiled. A row asked for twice (--rows
    ours+compile jpeg:gpu+compile ours+compile jpeg:gpu+compile: the order's effect) is paired with the nearest run
    of its step, the earlier on a tie."""
    out = []
    for i, r in enumerate(rows):
        if not r["row"].startswith(("jpeg:", "ours+loader")):
            continue
        want = "ours+compile" if r["row"].endswith("+compile") else "ours"
        near = min((j for j, q in enumerate(rows) if q["row"] == want), key=lambda j: abs(j - i), default=None)
        if near is not None:
            out.append((r, rows[near]))
    return out


JPEG_DECODES = ("cpu", "gpu", "gpu+cpu", "cpu-v2", "cpu+gpucrop", "gpu+cpu+gpucrop", "cpu+reduced",
                "cpu+reduced+gpucrop")


def row_input(decode):
    """A jpeg row's input (``gpu+cpu+gpucrop``, one of JPEG_DECODES) as the trainer's flags: (--decode, whether
    --cpu-decode-share applies, --crop-on, --decode-scale)."""
    parts = decode.split("+")
    return (parts[0], decode.startswith("gpu+cpu"), "gpu" if "gpucrop" in parts else "cpu",
            "reduced" if "reduced" in parts else "full")
COMPILED_ROWS = ["ours+compile"] + ["jpeg:{}+compile".format(d) for d in JPEG_DECODES if d != "cpu-v2"]


def step_stream(device):
    """A row's steps on CUDA on a non-blocking stream of their own (after the work queued before it) instead of the
    legacy default stream, where a script's work goes unless told otherwise: work issued there waits for every
    blocking stream's earlier work and the work issued after it on any blocking stream waits for it (CUDA
    programming guide, "Implicit Synchronization"); torch.cuda.Stream() is a pool stream, which PyTorch creates
    with cudaStreamNonBlocking (c10/cuda/CUDAStream.cpp, kDefaultFlags), so it takes no part. Tried for nvJPEG's
    decode, which took the compiled step's length beside it: on a stream of its own the fed row was no faster
    (benchmarks/RESULTS.md, sixth pass), so the trainer keeps the default stream."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    return torch.cuda.stream(stream)


def time_row(args, name, b, images, targets, size, device, amp):
    """One row: build the model, the step for ``name`` at batch ``b``, time it, print and return the row."""
    torch.manual_seed(0)
    model = build(args.arch, device, channels_last=name != "reference" and device.type == "cuda")
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    if name == "reference":
        step = reference_step(model, images[:b], targets[:b], device, amp)
    elif name in ("ours", "ours+compile"):
        step = our_step(model, images[:b], targets[:b], device, amp,
                        args.compile_backend if name == "ours+compile" else None, args.compile_mode)
    elif name.startswith("jpeg:"):
        decode, shared, crop_on, decode_scale = row_input(name[5:].replace("+compile", ""))
        step = jpeg_step(model, b, device, amp, args.workers, args.data_path, decode,
                         args.compile_backend if name.endswith("+compile") else None, args.compile_mode,
                         args.cpu_decode_share if shared else 0.0, crop_on, decode_scale)
    elif name == "ours+loader":
        step = loader_step(model, b, size, device, amp, args.workers,
                           args.loader_images or max(4 * b, 1024))
    else:
        step = network_step(model, images[:b], device, amp)
    warmup = args.warmup + (3 if name.endswith("+compile") else 0)
    if name.startswith("jpeg:") or name == "ours+loader":
        warmup = loader_warmup(warmup, args.workers)
    wall, busy = timed(step, args.steps, warmup, device)
    row = {"arch": args.arch, "batch": b, "row": name, "images_per_s": b / wall,
           "step_ms": 1000 * wall, "gpu_busy": busy,
           "peak_mem_gb": torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else None,
           "input": step.timings(warmup) if isinstance(step, FedStep) else None}
    if name == "ours+compile" and not args.no_compile_agreement:
        # equality on a batch of at most 16: a compiled graph's numerics do not depend on the batch size
        row.update(compile_agreement(args.arch, device, images[:min(b, 16)], targets[:min(b, 16)], amp,
                                     args.compile_backend))
    print("{arch} batch {batch:>4} {row:<13} {images_per_s:>9.1f} img/s  {step_ms:>8.1f} ms/step  "
          "GPU busy {busy}  peak {mem}{wait}".format(
              busy="-" if busy is None else "{:.0%}".format(busy),
              mem="-" if row["peak_mem_gb"] is None else "{:.1f} GB".format(row["peak_mem_gb"]),
              wait=input_columns(row["input"]), **row), flush=True)
    if "grad_rel_diff" in row:
        print("  one step, relative differences of the losses / the gradients: compiled ({}) vs eager "
              "{:.1e} / {:.1e}; eager vs float64 (the step's own rounding) {:.1e} / {:.1e}".format(
                  args.compile_backend, row["loss_rel_diff"], row["grad_rel_diff"],
                  row["eager_vs_float64_loss_rel_diff"], row["eager_vs_float64_grad_rel_diff"]), flush=True)
    del model, step
    return row


def get_args_parser(add_help=True):
    p = ArgumentParser(description="Training throughput: our step vs a torchvision-reference-style step.",
                       add_help=add_help)
    p.add_argument("--arch", default="ssdlite320_mobilenet_v3_large", choices=ARCHS)
    p.add_argument("--batch-sizes", type=batch_size, nargs="+", default=[64, 128, 256])
    p.add_argument("--steps", type=iterations, default=20)
    p.add_argument("--warmup", type=int_range(0, MAX_ITERATIONS), default=5)
    p.add_argument("--device", type=torch_device, default=default_device())
    p.add_argument("--workers", type=worker_count, default=min(16, os.cpu_count() or 1),
                   help="loader workers for the ours+loader row")
    p.add_argument("--loader-images", type=image_count,
                   help="images in the ours+loader row's set (default: max(4 x batch, 1024)); a pass over them "
                        "ends every images/batch steps, and each new pass waits for the workers to refill")
    p.add_argument("--rows", nargs="+", default=["reference", "ours", "ours+loader", "network"],
                   choices=["reference", "ours", "ours+loader", "network"] + ["jpeg:" + d for d in JPEG_DECODES] +
                   COMPILED_ROWS, help="rows to time; a +compile row alone times only that compiled row (--compile "
                   "adds every compiled row of the rows asked for)")
    p.add_argument("--data-path", help="a VOC folder of JPEG photos for the jpeg:* rows (python -m "
                   "edgeexport.data.make_voc writes one)")
    p.add_argument("--cpu-decode-share", type=probability, default=0.3,
                   help="the jpeg:gpu+cpu rows' share of each batch decoded by the loader workers (train's "
                        "--cpu-decode-share)")
    p.add_argument("--compile", action="store_true", help="also time ours with torch.compile, and compare one "
                   "step's losses and gradients with the eager step's")
    p.add_argument("--no-compile-agreement", action="store_true", help="skip the compiled-vs-eager comparison of "
                   "ours+compile (it compiles the step a second time, a minute or two of inductor)")
    p.add_argument("--compile-backend", default="inductor", choices=["inductor", "aot_eager"],
                   help="torch.compile's backend; aot_eager captures the graph without generating kernels")
    p.add_argument("--compile-mode", choices=COMPILE_MODES,
                   help="torch.compile's mode (inductor only); reduce-overhead replays the step as CUDA graphs")
    p.add_argument("--step-stream", choices=["default", "side"], default="default",
                   help="the CUDA stream each row's step runs on: default (the legacy default stream, as the "
                        "trainer) or side (a non-blocking stream of its own: step_stream)")
    p.add_argument("--no-amp", action="store_true")
    p.add_argument("--json", type=output_file, help="write the table here")
    return p


def main(args):
    from benchmarks.stats import json_output, write_json
    if args.compile_mode and args.compile_backend != "inductor":
        from edgeexport.device.errors import UsageError
        raise UsageError("--compile-mode is inductor's; --compile-backend {} would ignore it".format(
            args.compile_backend))
    outputs = json_output(args.json, reads=[args.data_path])
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        from edgeexport.device.errors import UsageError
        raise UsageError("--device cuda asked for, but this machine has no CUDA GPU; pass --device cpu")
    amp = not args.no_amp
    size = (320, 320)
    torch.backends.cudnn.benchmark = True
    rows = []
    images, targets = make_batch(max(args.batch_sizes), size, seed=5)
    jpeg = [r for r in args.rows if r.startswith("jpeg:")]
    if jpeg and not args.data_path:
        from edgeexport.device.errors import UsageError
        raise UsageError("the rows {} read a JPEG folder: pass --data-path".format(" ".join(jpeg)))
    names = list(args.rows)
    if args.compile:
        names += [r for r in ["ours+compile"] + [j + "+compile" for j in jpeg] if r in COMPILED_ROWS and r not in names]
    for b in args.batch_sizes:
        for name in names:
            on_side = args.step_stream == "side" and device.type == "cuda"
            with step_stream(device) if on_side else contextlib.nullcontext():
                rows.append(time_row(args, name, b, images, targets, size, device, amp))
    ratios = {}
    for b in args.batch_sizes:
        by = {r["row"]: r["images_per_s"] for r in rows if r["batch"] == b}
        if "reference" in by and "ours" in by:
            ratios[b] = by["ours"] / by["reference"]
            print("batch {}: ours / reference = {:.1f}x".format(b, ratios[b]))
    for b in args.batch_sizes:
        for r, base in fed_steps([r for r in rows if r["batch"] == b]):
            r["of_step"] = r["images_per_s"] / base["images_per_s"]
            print("batch {}: {} at {:.0%} of {}".format(b, r["row"], r["of_step"], base["row"]))
    env = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu ({} threads)".format(
        torch.get_num_threads()), "torch": torch.__version__, "amp": "bf16 (ours), fp16 GradScaler (reference)"
        if amp and device.type == "cuda" else "off", "workers": args.workers, "data_path": args.data_path,
        "cpu_count": os.cpu_count(), "compile_mode": args.compile_mode, "step_stream": args.step_stream,
        "cpu_decode_share": args.cpu_decode_share if any("gpu+cpu" in r["row"] for r in rows) else None}
    write_json(outputs, args.json, {"env": env, "rows": rows, "ours_over_reference": ratios})
    return 0


if __name__ == "__main__":
    run_cli(get_args_parser, main)
