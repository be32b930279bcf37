"""The PTQ and QAT table: each INT8 bundle's int8 row against its own fp32 row and against the base model's.

Reads the validation rows export recorded in each bundle's model.json (export --precision int8 --val-data ...):
the fp32 graph on nvinfer's path (`nvinfer`) and the Q/DQ graph on the same path (`int8`), same images.

    .venv/bin/python benchmarks/int8_table.py NAME=BUNDLE[:BASE] ... [--json OUT.json]

BASE (optional): the bundle of the model a QAT run fine-tuned, whose nvinfer row is the fp32 the QAT int8 is also
set against.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.stats import json_output, write_json  # noqa: E402


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("rows", nargs="+", metavar="NAME=BUNDLE[:BASE]")
    p.add_argument("--json", help="write the table here")
    return p


def rows_of(bundle):
    from edgeexport.device.meta import BundleMeta
    meta = BundleMeta.load(bundle)
    rows = {r["backend"]: r for r in (meta.validation or {}).get("rows", [])}
    if "nvinfer" not in rows or "int8" not in rows:
        from edgeexport.device.errors import UsageError
        raise UsageError("{} has no nvinfer and int8 rows: export it with --precision int8 --val-data".format(bundle))
    return rows, meta


def parse_row(spec):
    """NAME=BUNDLE[:BASE] -> (name, bundle, base or "")."""
    name, _, paths = spec.partition("=")
    bundle, _, base = paths.partition(":")
    return name, bundle, base


def main(args):
    specs = [parse_row(spec) for spec in args.rows]
    outputs = json_output(args.json, reads=[p for _, bundle, base in specs for p in (bundle, base)])
    out = {"metric": "mAP@[.5:.95], the bundle's validation set, nvinfer's path, ONNX Runtime", "rows": []}
    print("{:<12} {:>8} {:>8} {:>8} {:>10} {:>8} {:>6}".format("row", "fp32", "int8", "drop", "base fp32",
                                                               "vs base", "float"))
    for name, bundle, base in specs:
        rows, meta = rows_of(bundle)
        record = meta.int8 or {}
        r = {"name": name, "bundle": bundle, "fp32": round(rows["nvinfer"]["map"], 4),
             "int8": round(rows["int8"]["map"], 4), "method": record.get("method"),
             "float_convs": len(record.get("kept_float", []))}
        r["drop_points"] = round(100 * (r["fp32"] - r["int8"]), 2)
        if base:
            r["base_fp32"] = round(rows_of(base)[0]["nvinfer"]["map"], 4)
            r["vs_base_points"] = round(100 * (r["int8"] - r["base_fp32"]), 2)
        out["rows"].append(r)
        print("{:<12} {:>8.4f} {:>8.4f} {:>8.2f} {:>10} {:>8} {:>6}".format(
            name, r["fp32"], r["int8"], r["drop_points"], "{:.4f}".format(r["base_fp32"]) if base else "-",
            "{:+.2f}".format(r["vs_base_points"]) if base else "-", r["float_convs"]))
    write_json(outputs, args.json, out)


if __name__ == "__main__":
    from edgeexport.device.cli import run_cli
    run_cli(get_args_parser, main)
