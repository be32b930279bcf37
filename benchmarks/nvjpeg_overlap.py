"""Does nvJPEG's batched decode wait for other streams' work? torchvision's decode_jpeg on CUDA, timed from the call
to its return, on an idle GPU and while one long kernel runs on another stream: the legacy default stream (where
a training step runs unless told otherwise) or a stream of its own (created non-blocking, as PyTorch's pool
streams are). A decode that takes as long as the kernel waits for it; one that takes its idle time runs beside it.

    python benchmarks/nvjpeg_overlap.py --data-path /tmp/voc --sizes 64 128 256 512 --json out.json

Why it matters: fed from a JPEG folder, the compiled step (39 ms a batch on an H200) waited for its batch while
the thread preparing it spent 39-45 ms in nvJPEG's decode of 180-256 files, which took 18 ms alone
(benchmarks/RESULTS.md, sixth pass). Needs a CUDA GPU.
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edgeexport.device.cli import ArgumentParser, batch_size, int_range, output_file, run_cli  # noqa: E402


def files(voc, n):
    import numpy as np
    paths = [p for p, _, _ in voc.items]
    return [torch.from_numpy(np.fromfile(paths[i % len(paths)], np.uint8)) for i in range(n)]


def decode_ms(data, device, chunk=None):
    """Milliseconds from the call to the return of the trainer's decode (gpu_input.decode_jpegs) on ``data``, in
    calls of ``chunk`` files (None: one call)."""
    from edgeexport.train.gpu_input import decode_jpegs
    t = time.perf_counter()
    decode_jpegs(data, device, chunk)
    return 1000 * (time.perf_counter() - t)


def sleep_cycles(ms, device):
    """torch.cuda._sleep's cycle count for a kernel of about ``ms`` milliseconds on this GPU (measured)."""
    torch.cuda._sleep(1000)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    cycles = 10 ** 7
    start.record()
    torch.cuda._sleep(cycles)
    end.record()
    end.synchronize()
    return int(cycles * ms / start.elapsed_time(end))


def beside(data, device, stream, cycles, chunk=None):
    """(decode ms, kernel ms): the decode called right after a long kernel is queued on ``stream``."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.cuda.stream(stream):
        start.record()
        torch.cuda._sleep(cycles)
        end.record()
    ms = decode_ms(data, device, chunk)
    end.synchronize()
    return ms, start.elapsed_time(end)


def get_args_parser(add_help=True):
    p = ArgumentParser(description="nvJPEG's decode time alone and beside another stream's kernel.",
                       add_help=add_help)
    p.add_argument("--data-path", required=True, help="a VOC folder of JPEGs (python -m edgeexport.data.make_voc)")
    p.add_argument("--sizes", type=batch_size, nargs="+", default=[64, 128, 256, 512], help="files per decode")
    p.add_argument("--chunks", type=batch_size, nargs="*", default=[128],
                   help="also decode each size in calls of this many files (gpu_input.decode_jpegs' chunk)")
    p.add_argument("--kernel-ms", type=int_range(10, 1000), default=100, help="the other stream's kernel")
    p.add_argument("--repeats", type=int_range(1, 100), default=5)
    p.add_argument("--json", type=output_file, help="write the table here")
    return p


def main(args):
    from benchmarks.stats import json_output, percentile, write_json
    from edgeexport.data import VOCDetection
    from edgeexport.device.errors import UsageError
    outputs = json_output(args.json, reads=[args.data_path])
    if not torch.cuda.is_available():
        raise UsageError("nvJPEG needs a CUDA GPU; this machine has none")
    device = torch.device("cuda")
    voc = VOCDetection(args.data_path)
    prep = torch.cuda.Stream(device)  # where the trainer's preparing thread decodes
    others = {"legacy default stream": torch.cuda.default_stream(device), "a stream of its own": torch.cuda.Stream()}
    cycles = sleep_cycles(args.kernel_ms, device)
    rows = []
    with torch.cuda.stream(prep):
        for n in args.sizes:
            data = files(voc, n)
            for chunk in [None] + [c for c in args.chunks if c < n]:
                decode_ms(data, device, chunk)  # nvJPEG's buffers for this size
                alone = [decode_ms(data, device, chunk) for _ in range(args.repeats)]
                row = {"files": n, "chunk": chunk or n, "alone_ms": percentile(alone, 50)}
                for name, stream in others.items():
                    got = [beside(data, device, stream, cycles, chunk) for _ in range(args.repeats)]
                    row[name] = {"decode_ms": percentile([d for d, _ in got], 50),
                                 "kernel_ms": percentile([k for _, k in got], 50)}
                rows.append(row)
                print("{:>4} files in calls of {:>4}: alone {:6.1f} ms; beside a {:.0f} ms kernel on the {}: {:6.1f} "
                      "ms; on {}: {:6.1f} ms".format(n, row["chunk"], row["alone_ms"],
                                                     row["legacy default stream"]["kernel_ms"], *[
                          x for name in others for x in (name, row[name]["decode_ms"])]), flush=True)
    env = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "torchvision": __import__("torchvision").__version__, "kernel_ms": args.kernel_ms}
    write_json(outputs, args.json, {"env": env, "rows": rows})
    return 0


if __name__ == "__main__":
    run_cli(get_args_parser, main)
