"""How far two right implementations of one Q/DQ graph differ: the tolerance a Q/DQ engine's parity is held to.

A TensorRT engine built from model_int8.onnx is checked against the bundle's int8 fixtures (ONNX Runtime's INT8
kernels on that graph), not against the fp32 ones. No TensorRT here, so the spread is measured between ONNX Runtime's
INT8 kernels (its QDQ fusions) and the same graph run as written (graph optimisations off: QuantizeLinear,
DequantizeLinear and Conv one by one, in float, the arithmetic TensorRT's docs give the graph), through the same
check an engine gets (device/check/parity.check_bundle, int8-qdq tolerances). For scale, beside it: the INT8
outputs against the fp32 fixtures, as export reported them.

    .venv/bin/python benchmarks/int8_parity.py BUNDLE [BUNDLE ...] [--json OUT.json]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.stats import json_output, write_json  # noqa: E402


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("bundles", nargs="+", help="bundles exported with --precision int8")
    p.add_argument("--json", help="write the table here")
    return p


def main(args):
    from edgeexport.device.bundle import Bundle
    from edgeexport.device.check.parity import check_bundle
    from edgeexport.device.runners.onnxruntime import OnnxRuntimeRunner
    outputs = json_output(args.json, reads=args.bundles)
    rows = []
    print("{:<14} {:>9} {:>9} {:>14} {:>8} {:>5}   {}".format(
        "bundle", "box max", "score max", "match/miss/x", "min IoU", "ok", "INT8 vs fp32 fixtures: box, score max"))
    for path in args.bundles:
        b = Bundle(path)
        with OnnxRuntimeRunner(b.host_graph(int8=True), optimize=False) as runner:
            r = check_bundle(b, runner, "int8")
        vs_fp32 = ((b.export_report or {}).get("int8_graph") or {}).get("raw", {})
        row = {"bundle": os.path.abspath(path), "precision": r.precision, "boxes_max": r.raw["boxes"]["max_abs"],
               "scores_max": r.raw["scores"]["max_abs"], "matched": r.matched, "missing": r.missing,
               "extra": r.extra, "min_iou": r.min_iou, "ok": r.ok,
               "int8_vs_fp32_fixtures": {k: vs_fp32[k]["max_abs"] for k in ("boxes", "scores") if k in vs_fp32}}
        rows.append(row)
        print("{:<14} {:>9.3f} {:>9.3f} {:>14} {:>8} {:>5}   {}".format(
            os.path.basename(os.path.normpath(path))[:14], row["boxes_max"], row["scores_max"],
            "{}/{}/{}".format(r.matched, r.missing, r.extra), "-" if r.min_iou is None else "{:.3f}".format(r.min_iou),
            "yes" if r.ok else "NO", ", ".join("{:.3f}".format(v) for v in row["int8_vs_fp32_fixtures"].values())))
    write_json(outputs, args.json, {"reference": "ONNX Runtime's INT8 kernels on the Q/DQ graph (the bundle's int8 "
                                    "fixtures)", "candidate": "the same graph, ONNX Runtime with every graph "
                                    "optimisation off", "rows": rows})
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    from edgeexport.device.cli import run_cli
    run_cli(get_args_parser, main)
