"""Throughput and latency of a TensorRT engine, the way trtexec reports them, on the device.

    python3 benchmarks/trt_fps.py BUNDLE [--engine FILE] [--batch-sizes 1] [--warmup 50] [--iterations 500]

For each batch size: warm-up, then a fixed number of timed iterations, measuring GPU compute time (inference
alone, CUDA events) and end-to-end time (host->device, inference, device->host) separately; median and p99
latency and frames/s. Output: JSON and a markdown table "Model | Board | Data type | Speed" with the board read
from the device (/proc/device-tree/model). Device-side: Python 3.6, numpy, tensorrt, pycuda; no torch.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.stats import board_name, json_output, markdown_table, summarize, write_json  # noqa: E402


def get_args_parser(add_help=True):
    from edgeexport.device.cli import MAX_ITERATIONS, ArgumentParser, batch_size, int_range, iterations, output_file
    p = ArgumentParser(description="TensorRT engine FPS, trtexec-style.", add_help=add_help)
    p.add_argument("bundle")
    p.add_argument("--engine", help="default: the engine nvinfer would use for the bundle's precision and batch")
    p.add_argument("--batch-sizes", type=batch_size, nargs="+", default=None, help="default: the engine's batch")
    p.add_argument("--warmup", type=int_range(0, MAX_ITERATIONS), default=50)
    p.add_argument("--iterations", type=iterations, default=500)
    p.add_argument("--json", type=output_file, default="trt_fps.json")
    return p


def measure(runner, x, warmup, iterations, timer=time.perf_counter, gpu_timer=None):
    """(end-to-end seconds per iteration, GPU-compute seconds per iteration or None)."""
    for _ in range(warmup):
        runner.infer({"input": x})
    e2e, compute = [], []
    for _ in range(iterations):
        t = timer()
        runner.infer({"input": x})
        e2e.append(timer() - t)
        if gpu_timer is not None:
            compute.append(gpu_timer())
    return e2e, (compute or None)


def main(args, trt=None, cuda=None):
    from edgeexport.device.bundle import Bundle
    from edgeexport.device.tensorrt.runner import TensorRTRunner
    bundle = Bundle(args.bundle)
    meta = bundle.meta
    engine = args.engine or bundle.configured_engine_path()
    outputs = json_output(args.json, reads=[engine], bundle=bundle)
    batches = args.batch_sizes or [meta.batch_size]
    board = board_name()
    h, w = meta.model.input_size
    rows = []
    with TensorRTRunner(engine, trt=trt, cuda=cuda, meta=meta) as runner:
        gpu_timer = _event_timer(runner)
        for b in batches:
            x = np.random.RandomState(0).uniform(  # numpy 1.13 (JetPack 4.6)
                -120, 130, (b, 3, h, w)).astype(np.float32)
            e2e, compute = measure(runner, x, args.warmup, args.iterations, gpu_timer=gpu_timer)
            row = {"model": meta.model.arch, "board": board, "precision": meta.precision, "batch_size": b,
                   "end_to_end": summarize(e2e, b)}
            if compute:
                row["gpu_compute"] = summarize(compute, b)
            rows.append(row)
            print("batch {:>3}: end-to-end {:.2f} ms median ({:.1f} FPS), p99 {:.2f} ms{}".format(
                b, row["end_to_end"]["median_ms"], row["end_to_end"]["fps"], row["end_to_end"]["p99_ms"],
                "; GPU compute {:.2f} ms median".format(row["gpu_compute"]["median_ms"]) if compute else ""))
    print()
    print(markdown_table(rows, [
        ("Model", lambda r: r["model"]), ("Board", "board"), ("Data type", lambda r: r["precision"].upper()),
        ("Batch", "batch_size"), ("Speed", lambda r: "{:.1f} FPS".format(r["end_to_end"]["fps"])),
        ("p99 latency", lambda r: "{:.2f} ms".format(r["end_to_end"]["p99_ms"]))]))
    write_json(outputs, args.json, {"engine": os.path.basename(engine), "board": board, "warmup": args.warmup,
                           "iterations": args.iterations, "results": rows})
    return 0


def _event_timer(runner):
    """GPU compute time of the last inference through CUDA events, where pycuda is the memory backend."""
    cuda_mod = getattr(getattr(runner, "_cuda", None), "cuda", None)
    if cuda_mod is None or not hasattr(cuda_mod, "Event"):
        return None
    from edgeexport.device.tensorrt import api as trt_api
    start, end = cuda_mod.Event(), cuda_mod.Event()
    stream = runner._cuda.stream

    def timed():
        start.record(stream)
        trt_api.execute(runner.engine, runner.context, {n: b[1] for n, b in runner.buffers.items()},
                        runner._cuda.stream_handle)
        end.record(stream)
        end.synchronize()
        return start.time_till(end) / 1000.0
    return timed


if __name__ == "__main__":
    from edgeexport.device.cli import run_cli
    run_cli(get_args_parser, main)
