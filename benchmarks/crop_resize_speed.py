"""--crop-on gpu's GPU half alone: decode_batch on batches the workers cut out of a JPEG folder, the crops resized
by the Triton kernel (triton_crops) and by its torch reference (gpu_input.resized_crops), side by side in one run:
milliseconds a batch from the call to its return (decode_batch waits for its kernels), the GPU's time between two
events around it, the GPU memory it took at its peak (its output included: 0.29 GiB at batch 256 and 320x320), and
how far the two outputs are apart.

    python benchmarks/crop_resize_speed.py --data-path /tmp/voc --batch 256 --json out.json

Why: fed by --decode cpu --crop-on gpu, the compiled step on an H200 ran at 85-89 % of its speed alone and no longer
waited for its input; what was left was the GPU's own work on the crops, run beside the step (benchmarks/RESULTS.md,
tenth pass). Runs on the CPU too (the reference only: Triton's kernels are compiled for GPUs), as a dry run.
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edgeexport.device.cli import ArgumentParser, batch_size, int_range, output_file, run_cli  # noqa: E402


def cut_batches(voc, batch, count):
    """``count`` batches as the trainer's loader hands them over with --decode cpu --crop-on gpu (every sample cut
    out, the resize left to the device): loader_speed's loader and pinning, as its GPU-half rows take them."""
    from benchmarks.loader_speed import loader_for, pinned
    it = iter(loader_for(voc, "cpu+gpucrop", batch, 0))
    return [pinned(next(it)) if torch.cuda.is_available() else next(it) for _ in range(count)]


def timed(batches, size, device, repeats):
    """(wall ms, GPU ms, extra GiB, last output) of decode_batch over ``repeats`` passes of ``batches``."""
    from benchmarks.stats import percentile
    from edgeexport.train.gpu_input import decode_batch
    cuda = device.type == "cuda"
    out = decode_batch(batches[0], size, device)  # Triton compiles its kernel on the first call
    walls, gpus = [], []
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    for _ in range(repeats):
        for b in batches:
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
            t = time.perf_counter()
            out = decode_batch(b, size, device)
            walls.append(1000 * (time.perf_counter() - t))
            if cuda:
                end.record()
                end.synchronize()
                gpus.append(start.elapsed_time(end))
            del out
    extra = (torch.cuda.max_memory_allocated() - base) / 2 ** 30 if cuda else None
    return percentile(walls, 50), percentile(gpus, 50) if gpus else None, extra, decode_batch(batches[0], size,
                                                                                                   device)


def get_args_parser(add_help=True):
    p = ArgumentParser(description="decode_batch on --crop-on gpu's batches: the Triton kernel against its torch "
                                   "reference.", add_help=add_help)
    p.add_argument("--data-path", required=True, help="a VOC folder of JPEGs (python -m edgeexport.data.make_voc)")
    p.add_argument("--batch", type=batch_size, default=256)
    p.add_argument("--batches", type=int_range(1, 64), default=4, help="distinct batches, cut out before timing")
    p.add_argument("--repeats", type=int_range(1, 1000), default=10, help="passes over them")
    p.add_argument("--json", type=output_file, help="write the table here")
    return p


def main(args):
    from benchmarks.stats import json_output, write_json
    from edgeexport.data import VOCDetection
    from edgeexport.train import gpu_input
    outputs = json_output(args.json, reads=[args.data_path])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    size = (320, 320)  # the loader's (SSDLite320's): the crops it ships are cut for that size (SHIP_AT_MOST)
    batches = cut_batches(VOCDetection(args.data_path, split="train"), args.batch, args.batches)
    crop_pixels = sum(int((b.shapes[:, 0] * b.shapes[:, 1]).sum()) for b in batches) / (len(batches) * args.batch)
    print("{} batches of {} crops, {:.0f} pixels a crop on average, to {}x{}, on {}".format(
        len(batches), args.batch, crop_pixels, size[0], size[1], device), flush=True)
    rows, outs = [], {}
    kinds = ["reference", "triton"] if device.type == "cuda" and gpu_input.triton_crops(device) is not None else [
        "reference"]
    for kind in kinds:
        gpu_input.USE_TRITON = kind == "triton"
        wall, gpu, extra, outs[kind] = timed(batches, size, device, args.repeats)
        rows.append({"resize": kind, "wall_ms": wall, "gpu_ms": gpu, "extra_gib": extra})
        print("{:>9}: {:7.2f} ms a batch from call to return, GPU {} ms, {} GiB at its peak".format(
            kind, wall, "n/a" if gpu is None else "{:.2f}".format(gpu),
            "n/a" if extra is None else "{:.2f}".format(extra)), flush=True)
    gpu_input.USE_TRITON = True
    apart = float((outs["triton"] - outs["reference"]).abs().max()) * 255 if "triton" in outs else None
    if apart is not None:
        print("the two outputs differ by at most {:.2e} levels of 255".format(apart))
    env = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu", "torch": torch.__version__,
           "triton": getattr(sys.modules.get("triton"), "__version__", None), "batch": args.batch, "size": size,
           "crop_pixels": crop_pixels, "batches": len(batches), "repeats": args.repeats}
    write_json(outputs, args.json, {"env": env, "rows": rows, "max_apart_levels": apart})
    return 0


if __name__ == "__main__":
    run_cli(get_args_parser, main)
