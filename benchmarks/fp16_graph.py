"""Which parts of the FP16 graph (TensorRT 11's FP16 source, edgeexport.export.fp16) should stay FP32: the drift
of each choice against the ORIGINAL model, side by side, the graphs run by ONNX Runtime on the CPU.

    python benchmarks/fp16_graph.py --model-path runs/demo/train/best.pth [--json fp16_graph.json]

Images: 6 natural photos and 24 synthetic scenes at the network size (8-bit), fed as nvinfer feeds them.
Columns: max and p99 |error| of scores and boxes, detections matched / missing / extra (fp16 tolerances), size.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.stats import json_output, markdown_table, write_json  # noqa: E402

CHOICES = {"all fp16": (), "first conv fp32": ("first_conv",), "tail fp32": ("tail",),
           "first conv + tail fp32": ("first_conv", "tail")}


def get_args_parser(add_help=True):
    from edgeexport.device.cli import MAX_IMAGES, ArgumentParser, int_range, output_file
    p = ArgumentParser(description=__doc__.strip().splitlines()[0], add_help=add_help)
    p.add_argument("--model-path", nargs="+", required=True)
    p.add_argument("--synthetic", type=int_range(0, MAX_IMAGES), default=24, help="synthetic scenes besides the photos")
    p.add_argument("--json", type=output_file)
    return p


def main(args):
    outputs = json_output(args.json, reads=args.model_path)
    from edgeexport.device.check.compare import compare_outputs
    from edgeexport.device.check.parity import run_backend
    from edgeexport.device.meta import BundleMeta, DetectionSettings
    from edgeexport.device.preprocess import network_input_from_8bit, stretch_to_network
    from edgeexport.device.runners.onnxruntime import OnnxRuntimeRunner
    from edgeexport.export.deploy import ReferenceModel, build_deploy_model
    from edgeexport.export.fp16 import fp16_twin
    from edgeexport.export.onnx_graph import export_onnx
    from edgeexport.export.parity import fixture_images, reference_outputs
    from edgeexport.model import load_model
    rows = []
    for path in args.model_path:
        model, mm, _ = load_model(path)
        deploy = build_deploy_model(model, mm)
        meta = BundleMeta(mm, num_anchors=int(deploy.anchors.shape[0]))
        graph = export_onnx(deploy, meta)
        h, w = mm.input_size
        small = np.stack([stretch_to_network(im, w, h, 1) for im in fixture_images(mm.labels, 6, args.synthetic)])
        expected = reference_outputs(ReferenceModel(model), small)
        x = network_input_from_8bit(small, meta.offsets)
        for name, islands in CHOICES.items():
            data = fp16_twin(graph.data, islands)
            with OnnxRuntimeRunner(data) as runner:
                got = run_backend(runner, x, 1)
            es, eb = (np.abs(got[k] - expected[k]) for k in ("scores", "boxes"))
            rep = compare_outputs(expected, got, w, h, "fp16", DetectionSettings(0.4, 0.55, 100))
            rows.append({"model": os.path.basename(path), "arch": mm.arch, "fp32 islands": name,
                         "scores_max": float(es.max()), "scores_p99": float(np.percentile(es, 99)),
                         "boxes_max": float(eb.max()), "boxes_p99": float(np.percentile(eb, 99)),
                         "matched": rep.matched, "missing": rep.missing, "extra": rep.extra,
                         "mb": len(data) / 1e6})
            print(" ".join("{}={}".format(k, v) for k, v in rows[-1].items()), flush=True)
    print(markdown_table(rows, [("model", "model"), ("fp32 islands", "fp32 islands"),
                                ("scores max", lambda r: "{:.4f}".format(r["scores_max"])),
                                ("scores p99", lambda r: "{:.5f}".format(r["scores_p99"])),
                                ("boxes max", lambda r: "{:.4f}".format(r["boxes_max"])),
                                ("boxes p99", lambda r: "{:.5f}".format(r["boxes_p99"])),
                                ("matched/missing/extra", lambda r: "{}/{}/{}".format(r["matched"], r["missing"],
                                                                                      r["extra"])),
                                ("MB", lambda r: "{:.1f}".format(r["mb"]))]))
    write_json(outputs, args.json, {"device": "cpu (ONNX Runtime)", "results": rows})
    return 0


if __name__ == "__main__":
    from edgeexport.device.cli import run_cli
    run_cli(get_args_parser, main)
