"""Export a trained SSDLite checkpoint to a DeepStream bundle for a Jetson.

    python export.py --model-path runs/demo/best.pth --output-dir bundle

Folds the normalisation into the first convolution, writes model.onnx (opset 13, TensorRT 8.2-compatible),
checks parity against the original PyTorch model, and writes the configs, labels, fixtures and README.
"""
import argparse
import sys

from edgeexport.cli import run_cli
from edgeexport.meta import ARCHS


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0], add_help=add_help,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model-path", required=True, help="model.pth (edgeexport format or torchvision reference)")
    p.add_argument("--output-dir", default="bundle", help="the bundle folder to write")
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    g = p.add_argument_group("for checkpoints without metadata (torchvision's reference scripts)")
    g.add_argument("--labels", nargs="+", help="the K foreground class names, in model order")
    g.add_argument("--labels-file", help="a file with one class name per line")
    g.add_argument("--arch", choices=ARCHS)
    g.add_argument("--image-mean", type=float, nargs=3, help="[0,1] scale, RGB (torchvision SSDLite: 0.5 0.5 0.5)")
    g.add_argument("--image-std", type=float, nargs=3, help="[0,1] scale, RGB")
    g = p.add_argument_group("deploy graph")
    g.add_argument("--color", default="rgb", choices=["rgb", "bgr"], help="the engine's input colour order")
    g.add_argument("--fold", default="exact", choices=["exact", "mean_into_bias"],
                   help="mean_into_bias is NOT exact at image borders; its error is measured and printed")
    g.add_argument("--layout", default="boxes_scores", choices=["boxes_scores", "top_class", "efficient_nms"],
                   help="top_class: per-anchor best class in the graph, fewer bytes for the parser; efficient_nms: "
                        "TensorRT's EfficientNMS_TRT plugin in the graph (nvinfer cluster-mode=4), using the "
                        "pre-cluster threshold, NMS IoU and topk below")
    g.add_argument("--opset", type=int, default=13, help="TensorRT 8.2 (Jetson Nano) parses up to 13")
    g.add_argument("--batch-size", type=int, default=1)
    g.add_argument("--dynamic-batch", action="store_true", help="dynamic batch dimension (else static)")
    g.add_argument("--no-simplify", action="store_true", help="skip onnxsim")
    g.add_argument("--trt-version", default="8.2", choices=["8.2", "8.4", "none"],
                   help="check the graph's operators against this TensorRT's ONNX parser")
    g = p.add_argument_group("DeepStream")
    g.add_argument("--precision", default="fp16", choices=["fp16", "fp32", "int8"], help="engine precision")
    g.add_argument("--pre-cluster-threshold", type=float, default=0.4)
    g.add_argument("--nms-iou-threshold", type=float, default=0.55)
    g.add_argument("--topk", type=int, default=100)
    g.add_argument("--video", help="a clip for app_config.txt: copied into the bundle, its size sets streammux")
    g.add_argument("--preprocess-min-agreement", type=float, default=0.8,
                   help="fail when torchvision's and nvinfer's preprocessing agree on fewer detections")
    return p


def main(args):
    from edgeexport.bundle import ExportOptions, export_bundle
    from edgeexport.configs import DetectionSettings
    from edgeexport.errors import InputFileError
    labels = args.labels
    if args.labels_file:
        try:
            with open(args.labels_file) as f:
                labels = [line.strip() for line in f if line.strip()]
        except OSError as e:
            raise InputFileError("cannot read --labels-file {}: {}".format(args.labels_file, e.strerror))
    try:
        settings = DetectionSettings(args.pre_cluster_threshold, args.nms_iou_threshold, args.topk)
    except ValueError as e:
        raise InputFileError(str(e))
    opt = ExportOptions(args.model_path, args.output_dir, labels, args.image_mean, args.image_std, args.arch,
                        args.color, args.fold, args.layout, args.opset, args.batch_size, args.dynamic_batch,
                        args.precision, not args.no_simplify, args.trt_version, args.force, args.video, settings,
                        args.preprocess_min_agreement)
    result = export_bundle(opt)
    t = result["timings"]
    print("bundle: {}  (export {:.1f} s: load+fold {:.1f}, ONNX {:.1f}, parity {:.1f})".format(
        result["bundle"], t["total_s"], t["load_and_fold_s"], t["onnx_s"], t["parity_s"]))
    print("next, on the Jetson: python3 -m edgeexport.build_engine . --{}  (writes {})".format(
        args.precision, result["engine_file"]))
    return 0


if __name__ == "__main__":
    run_cli(get_args_parser, main)
