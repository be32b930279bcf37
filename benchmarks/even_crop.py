"""How much of the nvinfer row's mAP drop is nvinfer's even crop? gst-nvinfer rounds the source rectangle down to
even width and height before scaling (gstnvinfer.cpp:1066-1190, get_converted_buffer; preprocess.scale_frame does
the same), so an odd-sized frame loses its last row or column. This runs the onnxruntime row twice on the same
set, once on the images as they are and once cropped to even sizes, beside the nvinfer row.

    python benchmarks/even_crop.py runs/converge/syn_torchvision/bundle --synthetic-size 300 --seed 2 \
        --json benchmarks/results/cpu2_even_crop.json
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edgeexport.device.bundle import Bundle  # noqa: E402
from edgeexport.device.check.eval_rows import NvInferRow, OnnxRuntimeRow, host_parser  # noqa: E402
from edgeexport.device.check.evaluate import format_table, load_validation_set, run_rows, table_rows  # noqa: E402
from edgeexport.device.cli import ArgumentParser, image_count, output_file, run_cli, seed  # noqa: E402
from benchmarks.stats import json_output, write_json  # noqa: E402


class EvenCropped(OnnxRuntimeRow):
    """The onnxruntime row fed each image cut down to even width and height, as nvinfer cuts its frames."""
    name = "even_crop"  # onnxruntime on the even-cropped image

    def predict(self, image):
        h, w = image.shape[:2]
        return super(EvenCropped, self).predict(image[:h & ~1, :w & ~1])


def get_args_parser(add_help=True):
    p = ArgumentParser(description="The onnxruntime row with and without nvinfer's even crop, beside the nvinfer "
                                   "row, on a synthetic set.", add_help=add_help)
    p.add_argument("bundles", nargs="+", help="bundle folders")
    p.add_argument("--synthetic-size", type=image_count, default=300)
    p.add_argument("--seed", type=seed, default=2, help="2: the trainer's held-out split for its --seed 0")
    p.add_argument("--json", type=output_file, help="write the rows here")
    return p


def main(args):
    outputs = json_output(args.json, reads=args.bundles)
    out = {}
    for path in args.bundles:
        bundle = Bundle(path)
        workdir = tempfile.mkdtemp(prefix="edgeexport-even-crop-")
        vset = load_validation_set(bundle, workdir, "synthetic", synthetic_size=args.synthetic_size, seed=args.seed)
        rows = [OnnxRuntimeRow(bundle, 0.01), EvenCropped(bundle, 0.01),
                NvInferRow(bundle, 0.01, parser=host_parser(bundle))]
        detections, seconds, ids = run_rows(rows, vset)
        table = table_rows(detections, seconds, vset, bundle.labels, ids, reference=None)
        print(format_table(table, "{}: {} synthetic images (seed {})".format(path, len(ids), args.seed)))
        out[path] = [{k: r[k] for k in ("backend", "map", "map50")} for r in table]
    write_json(outputs, args.json, out)
    return 0


if __name__ == "__main__":
    run_cli(get_args_parser, main)
