"""FPS from deepstream-app's perf output ("**PERF:  30.12 (29.87)	29.95 (29.80)" lines, one pair per stream).

    python3 benchmarks/deepstream_perf.py deepstream.log [--json FILE]

Per stream: the mean of the current-FPS values, the first interval dropped as warm-up. Device-side (Python 3.6).
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# deepstream-app prints, per interval, "current (average)" for each source after **PERF:
PERF = re.compile(r"\*\*PERF:\s*(.*)")
PAIR = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*\(([0-9]+(?:\.[0-9]+)?)\)")


def perf_fps(text):
    """Per-interval current FPS of each source: [[fps of source 0, source 1, ...], ...], warm-up interval dropped."""
    intervals = []
    for line in text.splitlines():
        m = PERF.search(line)
        if m:
            pairs = PAIR.findall(m.group(1))
            if pairs:
                intervals.append([float(p[0]) for p in pairs])
    return intervals[1:] if len(intervals) > 1 else intervals


def summarize_streams(intervals):
    streams = max(len(i) for i in intervals)
    out = []
    for s in range(streams):
        values = [i[s] for i in intervals if len(i) > s]
        out.append({"stream": s, "intervals": len(values), "mean_fps": sum(values) / len(values),
                    "min_fps": min(values), "max_fps": max(values)})
    return out


def get_args_parser(add_help=True):
    from edgeexport.device.cli import ArgumentParser, output_file
    p = ArgumentParser(description="FPS from deepstream-app's **PERF lines.", add_help=add_help)
    p.add_argument("log", help="deepstream-app's output, with enable-perf-measurement=1")
    p.add_argument("--json", type=output_file, help="also write the result here")
    return p


def main(args):
    from benchmarks.stats import json_output, write_json
    from edgeexport.device.errors import InputFileError
    outputs = json_output(args.json, reads=[args.log])
    try:
        with open(args.log) as f:
            intervals = perf_fps(f.read())
    except (IOError, OSError, UnicodeDecodeError) as e:
        raise InputFileError("cannot read {}: {}".format(args.log, getattr(e, "strerror", None) or e))
    if not intervals:
        raise InputFileError("no **PERF lines in {}: was enable-perf-measurement=1 set, and did the pipeline "
                             "run?".format(args.log))
    streams = summarize_streams(intervals)
    result = {"streams": streams, "total_fps": sum(s["mean_fps"] for s in streams)}
    for s in streams:
        print("stream {stream}: mean {mean_fps:.1f} FPS over {intervals} intervals (min {min_fps:.1f}, "
              "max {max_fps:.1f})".format(**s))
    print("deepstream-app: {:.1f} FPS over {} stream(s)".format(result["total_fps"], len(streams)))
    write_json(outputs, args.json, result)
    return 0


if __name__ == "__main__":
    from edgeexport.device.cli import run_cli
    run_cli(get_args_parser, main)
