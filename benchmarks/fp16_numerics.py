"""FP16 numerics of the folded deploy graph against the fp32 original, on a GPU: the proxy for a TensorRT fp16
engine's drift, which justifies the fp16 tolerances of edgeexport/device/check/compare.py.

    python benchmarks/fp16_numerics.py --model-path best.pth --device cuda --json fp16.json

The reference is the ORIGINAL model (unfolded, torchvision's normalisation) in fp32 with TF32 off; the candidate
is the folded graph in fp16, fed exactly as nvinfer feeds it. Inputs: natural photos shipped with scikit-image and
synthetic scenes, stretched to the network size in 8 bits.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.stats import json_output, write_json  # noqa: E402


def get_args_parser(add_help=True):
    from edgeexport.device.cli import MAX_IMAGES, ArgumentParser, int_range, output_file, probability
    from edgeexport.model.torch_device import torch_device
    p = ArgumentParser(description=__doc__.strip().splitlines()[0], add_help=add_help)
    p.add_argument("--model-path", nargs="+", required=True)
    p.add_argument("--device", type=torch_device, default="cpu", help="cuda for the fp16 proxy of a GPU engine")
    p.add_argument("--synthetic", type=int_range(0, MAX_IMAGES), default=24, help="synthetic scenes besides the photos")
    p.add_argument("--pre-cluster-threshold", type=probability, default=0.4)
    p.add_argument("--json", type=output_file)
    return p


def main(args):
    import torch
    outputs = json_output(args.json, reads=args.model_path)

    from edgeexport.device.check.compare import compare_outputs, match_detections
    from edgeexport.device.meta import DetectionSettings
    from edgeexport.device.postprocess import Detections, detect
    from edgeexport.export.parity import fixture_images, fp16_vs_fp32
    from edgeexport.model.checkpoint import load_model

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.device(args.device)
    results = []
    for path in args.model_path:
        model, meta, _ = load_model(path)
        h, w = meta.input_size
        images = fixture_images(meta.labels, count_photos=6, count_synthetic=args.synthetic)
        ref, got = fp16_vs_fp32(model, meta, images, device)
        err_s = np.abs(ref["scores"] - got["scores"])
        err_b = np.abs(ref["boxes"] - got["boxes"])
        # the top-100 candidates per image by score, as a detector's output would be judged
        top_match = []
        for i in range(len(images)):
            a = detect(ref, i, w, h, meta.num_classes, 0.0, 0.55, 100)
            b = detect(got, i, w, h, meta.num_classes, 0.0, 0.55, 100)
            order = np.argsort(-a.scores)[:100]
            a = Detections(a.boxes[order], a.scores[order], a.classes[order])
            pairs, _, _ = match_detections(a, b, 0.9)
            top_match.append(len(pairs) / float(max(len(a), 1)))
        report = compare_outputs(ref, got, w, h, "fp16", DetectionSettings(args.pre_cluster_threshold, 0.55, 100))
        row = {"model": os.path.basename(path), "arch": meta.arch, "images": len(images),
               "scores_max_abs": float(err_s.max()), "scores_p99_abs": float(np.percentile(err_s, 99)),
               "scores_p999_abs": float(np.percentile(err_s, 99.9)),
               "boxes_max_abs": float(err_b.max()), "boxes_p99_abs": float(np.percentile(err_b, 99)),
               "top100_matched_iou09_same_class": float(np.mean(top_match)),
               "detections_at_threshold": {"threshold": args.pre_cluster_threshold, "matched": report.matched,
                                           "missing": report.missing, "extra": report.extra,
                                           "min_iou": report.min_iou},
               "passes_fp16_tolerances": report.ok}
        results.append(row)
        print(report.table("fp16 folded graph vs fp32 original: {}".format(os.path.basename(path))))
        print("  scores |err|: max {scores_max_abs:.4f} p99 {scores_p99_abs:.5f}; boxes |err|: max {boxes_max_abs:.4f}"
              " p99 {boxes_p99_abs:.5f}; top-100 matched at IoU>=0.9: {top100_matched_iou09_same_class:.1%}".format(
                  **row))
    payload = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "torch": str(torch.__version__), "tf32": False, "results": results}
    write_json(outputs, args.json, payload)
    return payload


if __name__ == "__main__":
    from edgeexport.device.cli import run_cli
    run_cli(get_args_parser, main)
