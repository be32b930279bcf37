"""Timing statistics and report formats shared by the benchmark scripts. Device-side safe (Python 3.6, no numpy
needed): trt_fps.py imports it on the Jetson."""
import json
import math
import platform


def percentile(values, q):
    """Linear-interpolated percentile (numpy's default method) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = int(math.floor(pos)), int(math.ceil(pos))
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(seconds, batch_size):
    """Per-iteration wall times (s) of a fixed batch size -> latency (ms) and throughput (frames/s)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1, got {}".format(batch_size))
    median = percentile(seconds, 50)
    return {"iterations": len(seconds), "batch_size": batch_size,
            "median_ms": 1000.0 * median, "p99_ms": 1000.0 * percentile(seconds, 99),
            "mean_ms": 1000.0 * sum(seconds) / len(seconds), "min_ms": 1000.0 * min(seconds),
            "fps": batch_size / median if median > 0 else float("inf")}


def board_name():
    """The device's own name: the Jetson device tree, else the CPU/OS description."""
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        try:
            with open(path, "rb") as f:
                return f.read().decode(errors="replace").strip("\x00 \n")
        except (IOError, OSError):
            pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except (IOError, OSError):
        pass
    return cpu or platform.processor() or platform.machine()


def markdown_table(rows, columns):
    """rows: list of dicts; columns: list of (header, key or callable)."""
    out = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = []
        for _, key in columns:
            v = key(r) if callable(key) else r.get(key, "")
            cells.append("{:.2f}".format(v) if isinstance(v, float) else str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def json_output(path, reads=(), bundle=None):
    """The --json of a benchmark under the project's output policy (edgeexport.device.outputs): checked before
    any timing against what the run reads; ``write_json(outputs, path, payload)`` writes it and says where."""
    from edgeexport.device.outputs import RunOutputs
    outputs = RunOutputs(reads=reads, bundle=bundle)
    outputs.file(path, "--json")
    return outputs


def write_json(outputs, path, payload):
    if path:
        outputs.write_text(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")
    outputs.report()
