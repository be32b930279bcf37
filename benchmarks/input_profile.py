"""Where a step fed from a JPEG folder loses time against the step alone: the train_speed rows (``ours``,
``jpeg:gpu``, ``jpeg:cpu``) run side by side, timed, then a few steps of each under torch.profiler (CPU and CUDA)
written as a Chrome trace (open in https://ui.perfetto.dev) and summarised: the wall time per step, the CUDA time
on each stream, and how much of the wall time the thread launching the step spends inside operators.

    python benchmarks/input_profile.py --data-path /tmp/voc_jpeg --rows ours jpeg:gpu --out-dir out/profile
"""
import gzip
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edgeexport.device.cli import ArgumentParser, batch_size, iterations, run_cli, worker_count  # noqa: E402
from edgeexport.device.meta import ARCHS  # noqa: E402

ROWS = ("ours", "jpeg:gpu", "jpeg:cpu", "jpeg:cpu-v2")


def summarise(trace, steps, main_tid):
    """From a Chrome trace's events: per step, the wall span, the CUDA kernel time per stream, and the time the
    launching thread (``main_tid``) spends in top-level operators (the rest is Python between them, or waiting)."""
    events = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
    kernels = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    t0 = min(e["ts"] for e in events)
    t1 = max(e["ts"] + e["dur"] for e in events)
    per_stream = {}
    for k in kernels:
        s = str(k.get("args", {}).get("stream", "?"))
        per_stream[s] = per_stream.get(s, 0.0) + k["dur"]
    ops = sorted((e for e in events if e.get("cat") == "cpu_op" and e.get("tid") == main_tid),
                 key=lambda e: e["ts"])
    covered, end = 0.0, -1.0
    for e in ops:  # the union of the launching thread's operator intervals: nested operators counted once
        a, b = e["ts"], e["ts"] + e["dur"]
        if b > end:
            covered += b - max(a, end)
            end = b
    span = (t1 - t0) / 1e3
    return {"span_ms_per_step": span / steps,
            "cuda_ms_per_step_by_stream": {s: v / 1e3 / steps for s, v in sorted(per_stream.items(),
                                                                                    key=lambda kv: -kv[1])},
            "launching_thread_in_ops_ms_per_step": covered / 1e3 / steps,
            "threads_with_ops": sorted({str(e.get("tid")) for e in events if e.get("cat") == "cpu_op"})}


def get_args_parser(add_help=True):
    p = ArgumentParser(description="Profile the training step fed by the trainer's input pipelines from a JPEG "
                       "folder, against the step alone.", add_help=add_help)
    p.add_argument("--data-path", required=True, help="a VOC folder of JPEG photos")
    p.add_argument("--arch", default="ssdlite320_mobilenet_v3_large", choices=ARCHS)
    p.add_argument("--rows", nargs="+", default=["ours", "jpeg:gpu"], choices=ROWS)
    p.add_argument("-b", "--batch-size", type=batch_size, default=256)
    p.add_argument("--workers", type=worker_count, default=min(14, os.cpu_count() or 1))
    p.add_argument("--steps", type=iterations, default=40, help="timed steps per row")
    p.add_argument("--profile-steps", type=iterations, default=4)
    p.add_argument("--out-dir", required=True, help="traces (<row>.trace.json.gz) and summary.json go here")
    return p


def main(args):
    import threading
    from benchmarks.train_speed import build, jpeg_step, loader_warmup, make_batch, our_step, sync, wall_per_step
    from torch.profiler import ProfilerActivity, profile
    from edgeexport.data import VOCDetection
    from edgeexport.device.errors import UsageError
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    VOCDetection(args.data_path)  # a folder that is not one fails here, before any row has run
    if "jpeg:gpu" in args.rows and device.type != "cuda":
        raise UsageError("the row jpeg:gpu decodes with nvJPEG and needs a CUDA GPU; this machine has none")
    torch.backends.cudnn.benchmark = True
    os.makedirs(args.out_dir, exist_ok=True)
    summary = {"env": {"torch": torch.__version__, "cpu_count": os.cpu_count(), "workers": args.workers,
                       "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"}, "rows": {}}
    for name in args.rows:
        torch.manual_seed(0)
        model = build(args.arch, device, channels_last=device.type == "cuda")
        if name == "ours":
            images, targets = make_batch(args.batch_size, (320, 320), seed=5)
            step = our_step(model, images, targets, device, True)
        else:
            step = jpeg_step(model, args.batch_size, device, True, args.workers, args.data_path, name[5:])
        wall = wall_per_step(step, args.steps, 10 if name == "ours" else loader_warmup(10, args.workers), device)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            for _ in range(args.profile_steps):
                step()
            sync(device)
        path = os.path.join(args.out_dir, name.replace(":", "_") + ".trace.json")
        prof.export_chrome_trace(path)
        with open(path, "rb") as f, gzip.open(path + ".gz", "wb") as packed:
            trace = json.loads(f.read())
            f.seek(0)
            shutil.copyfileobj(f, packed)
        os.remove(path)
        main_tid = threading.get_native_id()
        row = {"images_per_s": args.batch_size / wall, "step_ms": 1000 * wall, "main_tid": main_tid}
        row.update(summarise(trace, args.profile_steps, main_tid))
        summary["rows"][name] = row
        print("{:<9} {:>8.1f} img/s  {:>6.1f} ms/step  profiled {:>6.1f} ms/step, launching thread in ops {:>6.1f} "
              "ms, CUDA by stream {}".format(name, row["images_per_s"], row["step_ms"], row["span_ms_per_step"],
                                             row["launching_thread_in_ops_ms_per_step"],
                                             {s: round(v, 1) for s, v in row["cuda_ms_per_step_by_stream"].items()}),
              flush=True)
        del model, step
    with open(os.path.join(args.out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    run_cli(get_args_parser, main)
