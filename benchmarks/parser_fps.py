"""Parse time per frame of the C++ nvinfer parser, default vs top-class layout, in the benchmarks' report format.

    python benchmarks/parser_fps.py [--build-dir build/parser-tests] [--json parser.json]

Runs the compiled ``parser_bench`` (tests/jetson/parser/parser_bench.cpp, built by scripts/test.sh) for a
COCO-sized head (3234 anchors x
90 classes) and a small head (3 classes); reports the median microseconds and bytes per frame of each layout and
the ratios default / top-class.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.stats import board_name, json_output, markdown_table, write_json  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def head_shape(text):
    """ANCHORSxCLASSES, both >= 1."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise argparse.ArgumentTypeError("expected ANCHORSxCLASSES with both >= 1 (e.g. 3234x90), got {!r}".format(
            text))
    return int(parts[0]), int(parts[1])


def get_args_parser(add_help=True):
    from edgeexport.device.cli import ArgumentParser, iterations, output_file, probability
    p = ArgumentParser(description=__doc__.strip().splitlines()[0], add_help=add_help)
    p.add_argument("--build-dir", default=os.path.join(REPO, "build", "parser-tests"))
    p.add_argument("--heads", type=head_shape, nargs="+", default=[(3234, 90), (3234, 3)], help="ANCHORSxCLASSES")
    p.add_argument("--iterations", type=iterations, default=3000)
    p.add_argument("--threshold", type=probability, default=0.4)
    p.add_argument("--json", type=output_file)
    return p


def main(args):
    from edgeexport.device.errors import BackendUnavailableError
    exe = os.path.join(args.build_dir, "parser_bench")
    outputs = json_output(args.json, reads=[args.build_dir])
    if not os.path.isfile(exe):
        try:
            subprocess.check_call(["make", "-s", "-C", os.path.join(REPO, "tests", "jetson", "parser"),
                                   "OUT=" + os.path.abspath(args.build_dir), "-j2"], stdout=subprocess.DEVNULL)
        except (OSError, subprocess.CalledProcessError) as e:
            raise BackendUnavailableError("cannot build parser_bench in {} ({}); install make and a C++ "
                                          "compiler".format(args.build_dir, e))
    rows = []
    for n, k in args.heads:
        out = subprocess.check_output([exe, str(n), str(k), str(args.iterations), str(args.threshold)],
                                      universal_newlines=True)
        res = {r["layout"]: r for r in (json.loads(line) for line in out.splitlines() if line.strip())}
        d, t = res["boxes_scores"], res["top_class"]
        rows.append({"head": "{} anchors x {} classes".format(n, k), "default_us": d["median_us"],
                     "top_class_us": t["median_us"], "time_ratio": d["median_us"] / t["median_us"],
                     "default_bytes": d["bytes_per_frame"], "top_class_bytes": t["bytes_per_frame"],
                     "bytes_ratio": d["bytes_per_frame"] / float(t["bytes_per_frame"]),
                     "objects": d["objects"], "same_objects": d["objects"] == t["objects"]})
    print(markdown_table(rows, [("head", "head"), ("default µs/frame", "default_us"),
                                ("top-class µs/frame", "top_class_us"), ("time ratio", "time_ratio"),
                                ("default bytes", "default_bytes"), ("top-class bytes", "top_class_bytes"),
                                ("bytes ratio", "bytes_ratio")]))
    payload = {"machine": board_name(), "iterations": args.iterations, "threshold": args.threshold, "results": rows}
    write_json(outputs, args.json, payload)
    return payload


if __name__ == "__main__":
    from edgeexport.device.cli import run_cli
    run_cli(get_args_parser, main)
