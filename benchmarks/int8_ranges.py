"""Which activation range PTQ should give each tensor: mAP of the Q/DQ graph per range statistic and calibration draw.

The ranges compared: ONNX Runtime's calibrators (minmax, percentile 99.999 of all values, entropy), and statistics of
each calibration image's largest |x| (their mean, median, 75th and 90th percentiles); each with export's sensitivity
guard (a conv whose INT8 output alone is off by more than model.qat.MAX_LAYER_ERROR on the median image stays
float; --max-layer-error tries other limits). Every graph runs on nvinfer's path with ONNX Runtime (the `int8`
row), on the bundle's validation set, beside the fp32 graph on the same path. The statistic export uses
(model.qat.RANGE_QUANTILE) was chosen from this table.

    .venv/bin/python export.py --model-path M.pth --output-dir B --force --val-data voc:runs/decode_map/voc \\
        --val-split val --val-max-images 300
    .venv/bin/python benchmarks/int8_ranges.py B --calib-data voc:runs/decode_map/voc --calib-split train \\
        --seeds 0 1 2 --json benchmarks/results/cpu2_int8_ranges_<model>.json
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.stats import json_output, write_json  # noqa: E402

STATS = ("image-max:mean", "image-max:50", "image-max:75", "image-max:90", "percentile", "minmax", "entropy")


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("bundle", help="a bundle exported with --val-data (its fp32 graph and validation set)")
    p.add_argument("--calib-data", required=True, metavar="KIND[:PATH]", help="as export's --calib-data")
    p.add_argument("--calib-split", help="voc: ImageSets/Main/<split>.txt")
    p.add_argument("--calib-max-images", type=int, default=256)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="calibration draws")
    p.add_argument("--stats", nargs="+", default=list(STATS), choices=STATS)
    p.add_argument("--max-layer-error", type=float, nargs="+",
                   help="the sensitivity guard's limits to try (default: model.qat.MAX_LAYER_ERROR)")
    p.add_argument("--json", help="write the table here")
    return p


def image_max_stat(per_image, stat):
    v = np.asarray(per_image, np.float64)
    r = float(v.mean()) if stat == "mean" else float(np.percentile(v, float(stat)))
    return -r, r


def evaluate(bundle, vset, parser, fp32, ranges, errors, limit, tmp, fp32_map, row, t0):
    """The int8 row of the Q/DQ graph from ``ranges``, convs whose error exceeds ``limit`` kept float."""
    from edgeexport.device.check.eval_rows import NvInferRow
    from edgeexport.device.check.evaluate import run_rows, table_rows
    from edgeexport.device.runners.onnxruntime import OnnxRuntimeRunner
    from edgeexport.export import quantize as Q
    keep = sorted(n for n, e in errors.items() if e > limit)
    graph = os.path.join(tmp, "int8.onnx")
    with open(graph, "wb") as f:
        f.write(Q.quantize_graph(fp32, ranges, keep).SerializeToString())
    det, sec, ids = run_rows([NvInferRow(bundle, 0.01, runner=OnnxRuntimeRunner(graph), parser=parser)], vset)
    m = table_rows(det, sec, vset, bundle.labels, ids)[0]["map"]
    row.update(max_layer_error=limit, float_convs=len(keep), map=round(m, 4),
               drop_points=round(100 * (fp32_map - m), 2))
    print("{:<16} {:>4} {:>6g} {:>6} {:>8.4f} {:>8.2f}  {:.0f}".format(row["range"], row["seed"], limit, len(keep), m,
                                                                      row["drop_points"], time.perf_counter() - t0),
          flush=True)
    return row


def main(args):
    from edgeexport.device.bundle import Bundle
    from edgeexport.device.check.eval_rows import NvInferRow, host_parser
    from edgeexport.device.check.evaluate import load_validation_set, run_rows, table_rows
    from edgeexport.export import quantize as Q
    from edgeexport.export.cli import dataset_arg
    from edgeexport.model.qat import MAX_LAYER_ERROR
    outputs = json_output(args.json, reads=[args.bundle])
    bundle = Bundle(args.bundle)
    fp32 = open(bundle.onnx_path, "rb").read()
    dataset = dataset_arg(args.calib_data, "--calib-data", split=args.calib_split)
    vset = load_validation_set(bundle, tempfile.mkdtemp(prefix="int8-ranges-"))
    parser = host_parser(bundle)
    limits = args.max_layer_error or [MAX_LAYER_ERROR]
    out = {"bundle": os.path.abspath(args.bundle), "calib_data": args.calib_data, "images": len(vset.images),
           "max_layer_error": limits, "metric": "mAP@[.5:.95], nvinfer's path, ONNX Runtime", "rows": []}
    det, sec, ids = run_rows([NvInferRow(bundle, 0.01, parser=parser)], vset)
    out["fp32"] = table_rows(det, sec, vset, bundle.labels, ids)[0]["map"]
    print("fp32 (nvinfer row): {:.4f} on {} images".format(out["fp32"], len(ids)), flush=True)
    print("{:<16} {:>4} {:>6} {:>6} {:>8} {:>8}  {}".format("range", "seed", "guard", "float", "mAP", "drop", "s"))
    with tempfile.TemporaryDirectory(prefix="int8-ranges-") as tmp:
        for seed in args.seeds:
            images = Q.CalibrationImages(dataset, bundle.meta, args.calib_max_images, seed)
            per_image = None
            for stat in args.stats:
                t0 = time.perf_counter()
                if stat.startswith("image-max:"):
                    if per_image is None:  # each image's largest |x| per conv input, once per draw
                        session, names = Q.conv_input_session(fp32)
                        per_image = {n: [] for n in names}
                        for x in images.inputs(progress=False):
                            for n, v in zip(names, session.run(names, {bundle.meta.input_name: x})):
                                per_image[n].append(float(np.abs(v).max()))
                    ranges = {n: image_max_stat(v, stat.split(":")[1]) for n, v in per_image.items()}
                else:
                    ranges = Q.calibrate(fp32, images, stat, echo=lambda *a: None)
                errors = Q.layer_errors(fp32, images.inputs(progress=False)[:Q.SENSITIVITY_IMAGES], ranges)
                for limit in limits:
                    out["rows"].append(evaluate(bundle, vset, parser, fp32, ranges, errors, limit, tmp, out["fp32"],
                                                dict(range=stat, seed=seed), t0))
                    t0 = time.perf_counter()
    write_json(outputs, args.json, out)


if __name__ == "__main__":
    from edgeexport.device.cli import run_cli
    run_cli(get_args_parser, main)
