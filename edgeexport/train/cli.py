"""Train an SSDLite320 detector (MobileNetV3-Large or -Small) on VOC, COCO or synthetic data.

    python -m edgeexport.train --dataset synthetic --arch ssdlite320_mobilenet_v3_small --epochs 10 --output-dir runs/demo
    torchrun --nproc_per_node=4 -m edgeexport.train --dataset coco --data-path imgs --ann-file train.json ...

Writes <output-dir>/last.pth (every epoch, for --resume) and best.pth (best mAP@.5 so far), both atomically,
plus metrics.json and curves.png.
"""
import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch

from ..device.cli import (MAX_ITERATIONS, ArgumentParser, batch_size, image_count, image_side, int_range,
                          iterations, non_negative_float, positive_float, positive_unit, probability,
                          run_cli, seed, worker_count)
from ..device.errors import CheckpointError, InputFileError, TrainingError, UsageError
from ..device.fileio import atomic_write_text, is_inside, remove_stale_temporaries
from ..device.outputs import RunOutputs
from ..device.meta import ARCHS, IMAGENET_MEAN, IMAGENET_STD, ModelMeta
from ..model.torch_device import default_device, torch_device

from . import distributed as D
from .loop import COMPILE_MODES, evaluate, train_one_epoch
from .ssd_loss import SSDTrainStep
from .train_input import (CROP_CHOICES, DECODE_CHOICES, SCALE_CHOICES, build_train_input, input_advice,
                          train_loader, training_stream)
from .transforms import PRESETS, EpochsSampler, TorchDetection, collate, eval_transform


def get_args_parser(add_help=True):
    p = ArgumentParser(description="Train an SSDLite320 MobileNetV3 detector for edgeexport.", add_help=add_help)
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="synthetic", choices=["synthetic", "voc", "coco", "openimages"],
                   help="dataset format (openimages: the folder jetson-inference's open_images_downloader.py writes)")
    g.add_argument("--data-path", help="VOC root (Annotations/, JPEGImages/), COCO image folder or Open Images root")
    g.add_argument("--ann-file", help="COCO: training annotations JSON")
    g.add_argument("--train-split", default=None, help="VOC: ImageSets/Main/<split>.txt for training (default: all)")
    g.add_argument("--val-data-path", help="VOC root or COCO image folder for evaluation")
    g.add_argument("--val-ann-file", help="COCO: evaluation annotations JSON")
    g.add_argument("--val-split", default=None, help="VOC: ImageSets/Main/<split>.txt for evaluation")
    g.add_argument("--labels", nargs="+", help="class names in order (default: discovered from the annotations)")
    g.add_argument("--on-bad-annotation", default="fail", choices=["fail", "skip"],
                   help="what to do with boxes outside the image, zero-area boxes, unknown classes, missing images")
    g.add_argument("--num-classes", type=int_range(1, 8), default=3, help="synthetic: number of shape classes")
    g.add_argument("--synthetic-train-size", type=image_count, default=2000, help="synthetic: images per epoch")
    g.add_argument("--synthetic-val-size", type=image_count, default=200, help="synthetic: held-out images")
    g.add_argument("--synthetic-image-size", type=image_side, nargs=2, metavar=("H", "W"),
                   help="synthetic: fixed image size (default: random sizes from 256 to 480)")
    g = p.add_argument_group("model")
    g.add_argument("--arch", default="ssdlite320_mobilenet_v3_large", choices=ARCHS)
    g.add_argument("--input-size", type=image_side, nargs=2, default=[320, 320], metavar=("H", "W"))
    g.add_argument("--image-mean", type=probability, nargs=3, default=list(IMAGENET_MEAN), help="on the [0,1] scale, RGB")
    g.add_argument("--image-std", type=positive_unit, nargs=3, default=list(IMAGENET_STD), help="on the [0,1] scale, RGB")
    g.add_argument("--pretrained-backbone", action="store_true",
                   help="start from torchvision's ImageNet MobileNetV3 weights (needs them in the torch hub cache)")
    g = p.add_argument_group("optimisation (torchvision's SSDLite recipe: SGD, cosine, warm-up)")
    g.add_argument("--epochs", type=iterations, default=600)
    g.add_argument("-b", "--batch-size", type=batch_size, default=24, help="images per GPU / process")
    g.add_argument("--lr", type=positive_float, default=0.15, help="for the total batch of 192 of the recipe; scale linearly")
    g.add_argument("--momentum", type=probability, default=0.9)
    g.add_argument("--weight-decay", "--wd", type=non_negative_float, default=4e-5)
    g.add_argument("--warmup-iters", type=int_range(0, MAX_ITERATIONS), default=1000, help="linear warm-up steps (capped at one epoch)")
    g.add_argument("--data-augmentation", default="ssdlite", choices=PRESETS)
    g.add_argument("--preprocess", default="torchvision", choices=["torchvision", "nvinfer"],
                   help="nvinfer: train on what DeepStream will feed the network (the 8-bit frame stretched to the "
                        "input size with nvinfer's bilinear filter); recorded in the checkpoint, known to export")
    g.add_argument("--clip-grad-norm", type=positive_float, default=None)
    g.add_argument("--bn-momentum", type=probability, default=None,
                   help="BatchNorm running-stat momentum (recipe: 0.03, tuned for 600 epochs); a short run needs "
                        "more, or its eval-mode statistics lag behind the weights. Not stored in the weights")
    g = p.add_argument_group("quantization-aware training (INT8: export --precision int8 then needs no calibration)")
    g.add_argument("--qat", action="store_true",
                   help="fine-tune --resume CHECKPOINT (a best.pth) with INT8 fake quantization exactly where "
                        "export's Q/DQ graph quantizes; --epochs counts the QAT epochs (a QAT last.pth continues)")
    g.add_argument("--qat-calib-batches", type=iterations, default=8,
                   help="training batches the held input ranges are calibrated on")
    g = p.add_argument_group("run")
    g.add_argument("--output-dir", default="runs/train", help="where last.pth, best.pth, metrics.json go")
    g.add_argument("--resume", default="", help="a last.pth to continue from (exactly after its last whole epoch)")
    g.add_argument("--force", action="store_true",
                   help="replace an earlier run's results in --output-dir (without it, or --resume, they are kept)")
    g.add_argument("--device", type=torch_device, default=default_device(), help="cpu, cuda or cuda:N")
    g.add_argument("-j", "--workers", type=worker_count, default=min(4, os.cpu_count() or 1), help="data loading processes")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision (default: on for CUDA)")
    g.add_argument("--amp-dtype", default="bf16", choices=["bf16", "fp16"],
                   help="bf16 (no loss scaling; Ampere and newer) or fp16 (with a GradScaler)")
    g.add_argument("--loss", default="batched", choices=["batched", "torchvision"],
                   help="batched: anchor matching, encoding and hard-negative mining for the whole batch on the "
                        "device (equal to torchvision's); torchvision: its own per-image loop (the reference)")
    g.add_argument("--compile", action="store_true", help="torch.compile the batched step (off by default: "
                   "benchmarks/train_speed.py --compile measures its agreement with the eager step)")
    g.add_argument("--compile-mode", choices=COMPILE_MODES, help="torch.compile's mode for --compile; "
                   "reduce-overhead replays the step as CUDA graphs (one process only)")
    g.add_argument("--decode", default="cpu", choices=DECODE_CHOICES,
                   help="cpu (default): image files decoded, cropped, resized and flipped in one pass in the loader "
                        "workers (4-6x torchvision's v2 transforms per worker; falls back to cpu-v2 for rendered data, "
                        "the ssd preset, --preprocess nvinfer, --loss torchvision); gpu: JPEG files decoded by nvJPEG "
                        "and augmented on the GPU, the workers only read bytes (for few cores per GPU); cpu-v2: "
                        "torchvision's v2 transforms. All three reach the same held-out mAP (benchmarks/RESULTS.md)")
    g.add_argument("--cpu-decode-share", type=probability, default=0.0,
                   help="--decode gpu: the fraction of each batch the loader workers decode on the CPU as --decode "
                        "cpu does, the rest nvJPEG's (default 0): for a GPU whose nvJPEG is slower than the step "
                        "when CPU cores are free. On an H200 it did not shorten nvJPEG's part (benchmarks/RESULTS.md)")
    g.add_argument("--crop-on", default="cpu", choices=CROP_CHOICES,
                   help="where the images the loader workers decode (--decode cpu: all; gpu: --cpu-decode-share) "
                        "are resized and flipped: cpu (default), or gpu: the workers decode and cut out the crop, "
                        "and the GPU resizes and flips every crop of a batch at once, in one Triton kernel (for a "
                        "step faster than the workers; photos near the network's size: 1.34-1.38x the samples per "
                        "worker core for 480x360 on a 2-core machine, no gain for 1920x1080, whose crops the "
                        "workers resize; on one H100 the compiled step fed at 99 %% of its speed, the trainer's "
                        "epochs at 97-98 %%; benchmarks/RESULTS.md, eighth and eleventh passes)")
    g.add_argument("--decode-scale", default="full", choices=SCALE_CHOICES,
                   help="--decode cpu: full (default) decodes every image at its stored size; reduced decodes a JPEG "
                        "whose drawn crop is at least twice the network's input on both sides at 1/2, 1/4 or 1/8 of "
                        "its size (libjpeg's DCT scaling), the most that keeps the crop at least the input's size: "
                        "for photos much larger than the input (to 320x320 on a 2-core machine: 4032x3024 photos "
                        "3.6-3.8x the samples per worker core, 1920x1080 1.2-1.5x, 480x360 none). Its pixels are "
                        "then about the means of the 2x2 to 8x8 pixels they cover, smoother than full's bilinear "
                        "samples; held-out mAP 0.007 below full on average over ten seeds of 2048x1536 photos "
                        "(95 %% interval -0.033..+0.019) and twice as spread between seeds: not shown to be the "
                        "same (benchmarks/RESULTS.md, tenth pass)")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory format (default: on for CUDA)")
    g.add_argument("--seed", type=seed, default=0)
    g.add_argument("--eval-every", type=iterations, default=1, help="evaluate every N epochs (and after the last)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    g.add_argument("--threads", type=worker_count, default=0, help="torch intra-op threads on CPU (0: torch's default)")
    return p


def build_datasets(args):
    from ..data import COCODetection, OpenImagesDetection, SyntheticShapes, VOCDetection
    if args.dataset == "synthetic":
        # rendered once, before the loader's workers start (they share it): rendering an image costs about what a
        # CPU training step of SSDLite-Small spends on it
        size = args.synthetic_image_size
        train = SyntheticShapes(args.synthetic_train_size, args.num_classes, seed=args.seed * 1000 + 1,
                                image_size=size).prerender(max(1, args.workers))
        val = SyntheticShapes(args.synthetic_val_size, args.num_classes, seed=args.seed * 1000 + 2,
                              image_size=size).prerender(max(1, args.workers))
        return train, val
    if not args.data_path:
        raise InputFileError("--dataset {} needs --data-path".format(args.dataset))
    if args.dataset == "openimages":  # its splits: train, and validation for evaluation
        train = OpenImagesDetection(args.data_path, args.train_split or "train", args.labels, args.on_bad_annotation)
        val = OpenImagesDetection(args.val_data_path or args.data_path, args.val_split or "validation", train.labels,
                                  args.on_bad_annotation)
        return train, val
    if args.dataset == "voc":
        train = VOCDetection(args.data_path, args.labels, args.train_split, args.on_bad_annotation)
        val_root = args.val_data_path or args.data_path
        val = VOCDetection(val_root, train.labels, args.val_split, args.on_bad_annotation) \
            if (args.val_split or args.val_data_path) else None
    else:
        if not args.ann_file:
            raise InputFileError("--dataset coco needs --ann-file")
        train = COCODetection(args.data_path, args.ann_file, args.labels, args.on_bad_annotation)
        val = COCODetection(args.val_data_path or args.data_path, args.val_ann_file, train.labels,
                            args.on_bad_annotation) if args.val_ann_file else None
    if val is None:
        raise InputFileError("no evaluation split: pass --val-split / --val-data-path (VOC) or --val-ann-file (COCO)")
    return train, val


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def lr_lambda_factory(warmup, total):
    """Linear warm-up from 1/1000, then cosine to 0 over the remaining steps; a function of the step alone."""
    def f(step):
        if step < warmup:
            alpha = step / max(warmup, 1)
            return 1e-3 * (1 - alpha) + alpha
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return f


OUTPUT_FILES = ("last.pth", "best.pth", "metrics.json", "curves.png")


def check_earlier_run(output_dir, resume, force):
    """A folder holding an earlier run's results is continued (--resume) or replaced on purpose (--force), never
    overwritten by a new run's first epoch."""
    if resume or force or not os.path.isdir(output_dir):
        return
    earlier = [n for n in OUTPUT_FILES if os.path.exists(os.path.join(output_dir, n))]
    if earlier:
        raise UsageError("{} holds an earlier run ({}): --resume {} to continue it, --force to replace it, or "
                         "name a new --output-dir".format(output_dir, ", ".join(earlier),
                                                          os.path.join(output_dir, "last.pth")))


def plot_curves(history, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ..device.fileio import atomic_write_with
    epochs = [h["epoch"] for h in history]
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax1.plot(epochs, [h["train_loss"] for h in history], "b-o", ms=3, label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss", color="b")
    ax2 = ax1.twinx()
    ev = [h for h in history if "map50" in h]
    ax2.plot([h["epoch"] for h in ev], [h["map50"] for h in ev], "g-s", ms=3, label="mAP@.5")
    ax2.plot([h["epoch"] for h in ev], [h["map"] for h in ev], "r-^", ms=3, label="mAP@[.5:.95]")
    ax2.set_ylabel("mAP")
    ax2.set_ylim(0, 1)
    ax3 = ax1.twinx()  # throughput, on its own axis at the right
    ax3.spines["right"].set_position(("axes", 1.12))
    ax3.plot(epochs, [h["images_per_s"] for h in history], "k:", lw=1, label="images/s")
    ax3.set_ylabel("images/s")
    fig.legend(loc="upper center", ncol=4, fontsize=8)
    fig.tight_layout()
    atomic_write_with(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def read_resume_checkpoint(path):
    """last.pth, read before anything costly starts (rendering the synthetic set takes a while): a file that is not
    a checkpoint with a train_state is refused at once."""
    from ..model.checkpoint import read_checkpoint
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("train_state"), dict):
        raise CheckpointError("{} has no train_state: resume from a last.pth written by this trainer".format(path))
    return ckpt


def check_same_model(path, ckpt, meta):
    """The checkpoint ``ckpt`` (read from ``path``) was written for this run's model settings ``meta``, or one
    CheckpointError."""
    try:
        saved = ModelMeta.from_dict(dict(ckpt["meta"], provenance={}))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError("{} has no usable model metadata ({})".format(path, e))
    if saved != meta:
        raise CheckpointError("{} was trained with other model settings ({}); this run has {}: pass the same "
                              "--arch, dataset labels, --image-mean/--image-std, --input-size".format(
                                  path, saved.to_dict(), meta.to_dict()))


def resume(path, ckpt, meta, model, optimizer, scheduler, scaler):
    """Load last.pth's weights and training state into the run; returns the train_state. Whatever is not a
    last.pth of this run's model is refused with one CheckpointError, by design."""
    state = ckpt["train_state"]
    check_same_model(path, ckpt, meta)
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["lr_scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        int(state["epoch"]), float(state["best_map50"]), list(state["history"])
    except Exception as e:  # by design: a state this run cannot take is not a resume checkpoint for it
        raise CheckpointError("{} cannot resume this run ({}: {})".format(path, type(e).__name__,
                                                                         str(e).splitlines()[0][:160]))
    return state


def read_qat_start(path):
    """--qat --resume PATH: (a trained checkpoint to start QAT from, None), or (None, a QAT last.pth to continue)."""
    from ..model.checkpoint import read_checkpoint
    if not path:
        raise UsageError("--qat fine-tunes a trained model: pass --resume BEST.pth (its weights; --epochs then counts "
                         "the QAT epochs)")
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict) or "meta" not in ckpt:
        raise CheckpointError("{} is not a checkpoint written by this trainer (no model and meta)".format(path))
    qat = ckpt.get("qat")
    if isinstance(ckpt.get("train_state"), dict) and qat is not None:
        if not isinstance(qat, dict) or not isinstance(qat.get("amax"), dict):
            raise CheckpointError("{} has a damaged QAT record (no input ranges)".format(path))
        return None, ckpt
    return ckpt, None


def load_weights(path, ckpt, meta, model):
    """A trained checkpoint's weights into this run's model (QAT's start); other model settings are refused."""
    check_same_model(path, ckpt, meta)
    try:
        model.load_state_dict(ckpt["model"])
    except Exception as e:  # by design: weights this model cannot take are not this model's
        raise CheckpointError("{} does not fit this model ({}: {})".format(path, type(e).__name__,
                                                                          str(e).splitlines()[0][:160]))


def qat_batches(dataset, batch_size, batches, device):
    """Up to ``batches`` lists of images (the model's eval input) from the start of ``dataset``."""
    n = min(len(dataset), batch_size * batches)
    for i in range(0, n, batch_size):
        items = [dataset[j] for j in range(i, min(n, i + batch_size))]
        images = [item[0].to(device) for item in items if isinstance(item, tuple)]  # a bad sample is left out
        if images:
            yield images


def main(args):
    from ..model.checkpoint import save_checkpoint
    from ..model.ssdlite import build_ssdlite

    if args.compile_mode and not args.compile:
        raise UsageError("--compile-mode {} is torch.compile's: pass --compile with it".format(args.compile_mode))
    if args.cpu_decode_share and args.decode != "gpu":
        raise UsageError("--cpu-decode-share divides each batch between the loader workers and nvJPEG: pass --decode "
                         "gpu with it (this run has --decode {})".format(args.decode))
    if args.decode_scale == "reduced" and args.decode != "cpu":
        raise UsageError("--decode-scale reduced is --decode cpu's (the loader workers' libjpeg); this run has "
                         "--decode {}".format(args.decode))
    rank, world, local = D.init_distributed()
    if args.compile_mode == "reduce-overhead" and world > 1:
        # measured in one process only (the H200); CUDA graphs under DistributedDataParallel never ran here
        raise UsageError("--compile-mode reduce-overhead runs in one process; under torchrun ({} processes) leave "
                         "it out (the default mode)".format(world))
    device = torch.device(args.device if world == 1 or args.device == "cpu" else "cuda:{}".format(local))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputFileError("--device cuda asked for, but this machine has no CUDA GPU; pass --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    use_amp = device.type == "cuda" if args.amp is None else args.amp
    channels_last = device.type == "cuda" if args.channels_last is None else args.channels_last
    show = not args.no_progress and D.is_main(rank)
    # the run folder may not overlap the dataset's folders nor hold its annotation files (the output policy,
    # device/outputs.py; a --resume checkpoint inside it is the usual case and allowed); created at the first
    # checkpoint, so a failed start leaves nothing
    RunOutputs(reads=[args.data_path, args.val_data_path, args.ann_file, args.val_ann_file]).folder(
        args.output_dir, "--output-dir")
    qat_start = None  # --qat from a trained checkpoint's weights (a QAT last.pth resumes as any run does)
    if args.qat:
        qat_start, resume_ckpt = read_qat_start(args.resume)
        if qat_start is not None and is_inside(os.path.abspath(args.resume), os.path.abspath(args.output_dir)):
            raise UsageError("--qat starts a new run from {}, which lies in --output-dir {}: the QAT checkpoints "
                             "would replace the model it fine-tunes; name another --output-dir".format(
                                 args.resume, args.output_dir))
    else:
        resume_ckpt = read_resume_checkpoint(args.resume) if args.resume else None
    # a new QAT run is a new run: it replaces an earlier run's results only with --force
    check_earlier_run(args.output_dir, args.resume if resume_ckpt is not None else "", args.force)

    train_set, val_set = build_datasets(args)
    if D.is_main(rank):
        from ..data.common import summary
        for line in summary("train", train_set) + summary("val", val_set):
            print(line, flush=True)
    meta = ModelMeta(args.arch, train_set.labels, args.image_mean, args.image_std, args.input_size,
                     reduced_tail=not args.pretrained_backbone, preprocessing=args.preprocess)
    seed_everything(args.seed)
    model = build_ssdlite(meta, pretrained_backbone=args.pretrained_backbone).to(device)
    if args.bn_momentum is not None:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = args.bn_momentum
    if channels_last:
        model = model.to(memory_format=torch.channels_last)

    if len(train_set) < args.batch_size * world:
        raise UsageError("the training set has {} images, fewer than one batch of {} ({} per process x {}): "
                         "every epoch would be empty; lower -b/--batch-size or add images".format(
                             len(train_set), args.batch_size * world, args.batch_size, world))
    nvinfer_size = meta.input_size if args.preprocess == "nvinfer" else None
    batched = args.loss == "batched"
    train_input = build_train_input(train_set, meta, args.decode, args.data_augmentation, args.preprocess, batched,
                                    args.seed + rank, device, args.cpu_decode_share, args.crop_on,
                                    args.decode_scale)
    train_data = train_input.dataset
    val_data = TorchDetection(val_set, eval_transform(nvinfer_size))
    steps_per_epoch = max(1, len(train_data) // (args.batch_size * world))
    total_steps = steps_per_epoch * args.epochs
    params = [p for p in model.parameters() if p.requires_grad]
    # the fused CUDA SGD: one kernel for every parameter's update
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                                **({"fused": True} if device.type == "cuda" else {}))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda_factory(min(args.warmup_iters, steps_per_epoch), total_steps))
    amp_dtype = torch.bfloat16 if args.amp_dtype == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if use_amp and device.type == "cuda" and amp_dtype == torch.float16 \
        else None

    start_epoch, best_map50, history = 0, -1.0, []
    qat = None
    if qat_start is not None:
        load_weights(args.resume, qat_start, meta, model)
        qat_start = None
        from ..model.qat import QatDetector
        qat = QatDetector(model, meta)
        calib = TorchDetection(train_set, eval_transform(nvinfer_size))
        qat.calibrate(qat_batches(calib, args.batch_size, args.qat_calib_batches, device),
                      echo=print if D.is_main(rank) else (lambda *a: None))
    elif args.qat:
        from ..model.qat import QatDetector
        qat = QatDetector(model, meta, amax=resume_ckpt["qat"]["amax"],
                          float_convs=resume_ckpt["qat"].get("float_convs") or ())
    if resume_ckpt is not None:
        state = resume(args.resume, resume_ckpt, meta, model, optimizer, scheduler, scaler)
        resume_ckpt = None  # its tensors are in the model and optimizer now
        start_epoch, best_map50, history = state["epoch"] + 1, state["best_map50"], list(state["history"])
        if start_epoch >= args.epochs:
            raise UsageError("{} already holds epoch {} of {}: nothing to train; raise --epochs to continue".format(
                args.resume, state["epoch"] + 1, args.epochs))
        if D.is_main(rank):
            print("resumed from {} after epoch {}".format(args.resume, state["epoch"]), flush=True)

    ddp_model = SSDTrainStep(model).to(device) if batched else model
    if batched and args.compile:
        ddp_model = torch.compile(ddp_model, mode=args.compile_mode)
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(ddp_model, device_ids=[local] if device.type == "cuda"
                                                              else None)
    if D.is_main(rank) and os.path.isdir(args.output_dir):
        # A run killed while writing leaves its hidden temporary; the final files themselves are whole.
        remove_stale_temporaries(args.output_dir, OUTPUT_FILES)
    val_loader = torch.utils.data.DataLoader(val_data, batch_size=args.batch_size, shuffle=False,
                                             num_workers=args.workers, collate_fn=collate)
    run_t0 = time.time()
    # one loader iterator for the whole run (EpochsSampler): its workers run into the next epoch while this one ends
    sampler = EpochsSampler(len(train_data), args.batch_size, start_epoch, args.epochs, args.seed, rank, world)
    loader = train_loader(train_input, args.batch_size, sampler, args.workers, device.type == "cuda")
    stream = training_stream(loader, batched, train_input.to_device, device)
    advice = None
    for epoch in range(start_epoch, args.epochs):
        # Every random choice of an epoch derives from (seed, epoch): a resumed run replays it exactly.
        seed_everything(args.seed + 7919 * (epoch + 1) + rank)
        try:
            stats = train_one_epoch(ddp_model, optimizer, scheduler, stream, device, epoch, scaler, world, show,
                                    args.clip_grad_norm, batched, use_amp and device.type == "cuda", amp_dtype,
                                    params, steps=steps_per_epoch,
                                    graphs=bool(batched and args.compile_mode == "reduce-overhead"))
        except TrainingError as e:  # one line, and what survives: checkpoints are written only after a good epoch
            last = os.path.join(args.output_dir, "last.pth")
            kept = ("{} holds epoch {}, the last good one: --resume it with the new flags".format(last, epoch - 1)
                    if epoch > 0 and os.path.isfile(last) else "no epoch finished, so no checkpoint was written")
            raise TrainingError("{}; {}".format(e, kept)) from None
        record = {"epoch": epoch, "train_loss": D.reduce_mean(stats["loss"], world, device),
                  "images_per_s": stats["images_per_s"], "epoch_seconds": stats["seconds"],
                  "input_wait_seconds": stats["input_wait_s"], "lr": optimizer.param_groups[0]["lr"]}
        if D.is_main(rank):
            if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
                record.update(evaluate(model, val_loader, device, meta.num_classes, show))
            history.append(record)
            is_best = record.get("map50", -1.0) > best_map50
            best_map50 = max(best_map50, record.get("map50", -1.0))
            provenance = {"epoch": epoch, "metrics": {k: record[k] for k in ("map", "map50") if k in record},
                          "torch": str(torch.__version__), "torchvision": str(__import__("torchvision").__version__),
                          "dataset": args.dataset, "seed": args.seed}
            meta.provenance = provenance
            train_state = {"epoch": epoch, "optimizer": optimizer.state_dict(), "lr_scheduler": scheduler.state_dict(),
                           "scaler": scaler.state_dict() if scaler is not None else {}, "best_map50": best_map50,
                           "history": history}
            os.makedirs(args.output_dir, exist_ok=True)
            extra = {"qat": qat.record()} if qat is not None else {}
            save_checkpoint(os.path.join(args.output_dir, "last.pth"), model, meta, train_state=train_state, **extra)
            if is_best:
                save_checkpoint(os.path.join(args.output_dir, "best.pth"), model, meta, **extra)
            atomic_write_text(os.path.join(args.output_dir, "metrics.json"), json.dumps(history, indent=1) + "\n")
            plot_curves(history, os.path.join(args.output_dir, "curves.png"))
            msg = "epoch {:3d}  loss {:.3f}  {:.1f} img/s  {:.0f} s".format(
                epoch, record["train_loss"], record["images_per_s"], record["epoch_seconds"])
            if record["input_wait_seconds"] is not None and record["epoch_seconds"] > 0:
                # the step's time spent waiting for its batches: high means the input, not the step, sets the pace
                msg += "  input wait {:.0%}".format(record["input_wait_seconds"] / record["epoch_seconds"])
            if "map50" in record:
                msg += "  mAP@.5 {:.3f}  mAP@[.5:.95] {:.3f}".format(record["map50"], record["map"])
            print(msg, flush=True)
            # not on the run's first epoch, whose wait includes the loader workers' start
            if advice is None and epoch > start_epoch and record["input_wait_seconds"] is not None and \
                    record["epoch_seconds"] > 0:
                advice = input_advice(train_input, record["input_wait_seconds"] / record["epoch_seconds"], epoch,
                                      args.workers, meta.input_size, max(1, (os.cpu_count() or 1) // world))
                if advice:
                    print(advice, flush=True)  # once a run
        D.barrier(world)
    if D.is_main(rank):
        print("trained {} epochs in {:.1f} min; best mAP@.5 {:.3f}; checkpoints in {}".format(
            args.epochs - start_epoch, (time.time() - run_t0) / 60, best_map50, args.output_dir))
    D.cleanup()
    return history


def cli(argv=None):
    run_cli(get_args_parser, main, argv)


if __name__ == "__main__":
    cli()
