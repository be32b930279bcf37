"""ONNX Runtime on the CPU: the bundle's fp32 graph and its Q/DQ twin, side by side in one run.

Each iteration runs one fixture image through both graphs (alternating which goes first), batch 1, so load on the
machine falls on both alike. The graphs are the ones the int8 and nvinfer rows run (before any TensorRT plugin).

    .venv/bin/python benchmarks/int8_speed.py BUNDLE [--iters 200] [--threads 0] [--json OUT.json]
"""
import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.stats import json_output, write_json  # noqa: E402


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("bundle", help="a bundle exported with --precision int8")
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    p.add_argument("--json", help="write the table here")
    return p


def main(args):
    import onnxruntime as ort
    from edgeexport.device.bundle import Bundle
    outputs = json_output(args.json, reads=[args.bundle])
    bundle = Bundle(args.bundle)
    meta = bundle.meta
    graphs = {"fp32": bundle.host_graph(), "int8": bundle.host_graph(int8=True)}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sessions = {k: ort.InferenceSession(v, opts, providers=["CPUExecutionProvider"]) for k, v in graphs.items()}
    inputs = bundle.fixtures.inputs
    times = {k: [] for k in sessions}
    for i in range(args.warmup + args.iters):
        x = inputs[i % len(inputs)][None]
        for k in (("fp32", "int8") if i % 2 else ("int8", "fp32")):
            t0 = time.perf_counter()
            sessions[k].run(None, {meta.input_name: x})
            if i >= args.warmup:
                times[k].append(time.perf_counter() - t0)
    rows = []
    for k, t in times.items():
        ms = 1000.0 * np.asarray(t)
        rows.append({"graph": k, "median_ms": round(float(np.median(ms)), 2),
                     "p90_ms": round(float(np.percentile(ms, 90)), 2),
                     "images_per_second": round(1000.0 / np.median(ms), 1)})
    print("{:<6} {:>10} {:>8} {:>8}".format("graph", "median ms", "p90 ms", "img/s"))
    for r in rows:
        print("{graph:<6} {median_ms:>10.2f} {p90_ms:>8.2f} {images_per_second:>8.1f}".format(**r))
    out = {"bundle": os.path.abspath(args.bundle), "arch": meta.model.arch, "onnxruntime": ort.__version__,
           "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "threads": args.threads,
           "iters": args.iters, "batch": 1, "rows": rows,
           "int8_vs_fp32": round(rows[1]["images_per_second"] / rows[0]["images_per_second"], 2)}
    print("int8 / fp32 throughput: {:.2f}x".format(out["int8_vs_fp32"]))
    write_json(outputs, args.json, out)


if __name__ == "__main__":
    from edgeexport.device.cli import run_cli
    run_cli(get_args_parser, main)
