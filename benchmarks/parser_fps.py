"""Parse time per frame of the C++ nvinfer parser, default vs top-class layout, in the benchmarks' report format.

    python benchmarks/parser_fps.py [--build-dir jetson/parser/build-host] [--json parser.json]

Runs the compiled ``parser_bench`` (jetson/parser/tests/parser_bench.cpp) for a COCO-sized head (3234 anchors x
90 classes) and a small head (3 classes); reports the median microseconds and bytes per frame of each layout and
the ratios default / top-class.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.stats import board_name, markdown_table, write_json  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0], add_help=add_help,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--build-dir", default=os.path.join(REPO, "jetson", "parser", "build-host"))
    p.add_argument("--heads", nargs="+", default=["3234x90", "3234x3"], help="ANCHORSxCLASSES")
    p.add_argument("--iterations", type=int, default=3000)
    p.add_argument("--threshold", type=float, default=0.4)
    p.add_argument("--json")
    return p


def main(args):
    from edgeexport.errors import BackendUnavailableError
    exe = os.path.join(args.build_dir, "parser_bench")
    if not os.path.isfile(exe):
        from edgeexport.parser_lib import build_parser
        build_parser(os.path.join(REPO, "jetson", "parser"), args.build_dir)
    if not os.path.isfile(exe):
        raise BackendUnavailableError("parser_bench was not built in {}".format(args.build_dir))
    rows = []
    for head in args.heads:
        n, k = head.split("x")
        out = subprocess.check_output([exe, n, k, str(args.iterations), str(args.threshold)], universal_newlines=True)
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
    if args.json:
        write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    from edgeexport.cli import run_cli
    run_cli(get_args_parser, main)
