"""Export a trained SSDLite checkpoint to a DeepStream bundle for a Jetson.

    python export.py --model-path runs/demo/best.pth --output-dir bundle
    edgeexport-export --model-path runs/demo/best.pth --output-dir bundle        (after pip install)

Folds the normalisation into the first convolution, writes model.onnx (opset 13, TensorRT 8.2-compatible),
checks parity against the original PyTorch model, and writes the configs, labels, fixtures and README.
"""
import os

from ..device.cli import ArgumentParser, batch_size, image_count, int_range, positive_unit, probability, run_cli
from ..device.postprocess import NMS_CANDIDATE_CAP
from ..device.meta import ARCHS, LAYOUTS
from ..device.errors import InputFileError, UsageError
from .trt_preflight import MAX_OPSET, MIN_OPSET

# Below this, the preprocessing report prints a warning line (it fails export only when a minimum is set).
PREPROCESS_WARN_BELOW = 0.8


def get_args_parser(add_help=True):
    p = ArgumentParser(description=__doc__.strip().splitlines()[0], add_help=add_help)
    p.add_argument("--model-path", required=True, help="model.pth (edgeexport format or torchvision reference)")
    p.add_argument("--output-dir", default="bundle", help="the bundle folder to write")
    p.add_argument("--force", action="store_true", help="replace an existing bundle (never any other folder)")
    g = p.add_argument_group("for checkpoints without metadata (torchvision's reference scripts)")
    g.add_argument("--labels", nargs="+", help="the K foreground class names, in model order")
    g.add_argument("--labels-file", help="a file with one class name per line")
    g.add_argument("--arch", choices=ARCHS, help="default: read from the checkpoint's tensors")
    g.add_argument("--image-mean", type=probability, nargs=3, help="[0,1] scale, RGB (torchvision SSDLite: 0.5 0.5 0.5)")
    g.add_argument("--image-std", type=positive_unit, nargs=3, help="[0,1] scale, RGB: more than 0, at most 1")
    g.add_argument("--override-metadata", action="store_true",
                   help="let --labels/--image-mean/--image-std/--arch replace what a checkpoint with metadata "
                        "records (without it a contradiction is refused)")
    g = p.add_argument_group("deploy graph")
    g.add_argument("--color", default="rgb", choices=["rgb", "bgr"], help="the engine's input colour order")
    g.add_argument("--fold", default="exact", choices=["exact", "mean_into_bias"],
                   help="mean_into_bias is NOT exact at image borders; its error is measured and printed")
    g.add_argument("--layout", default="boxes_scores", choices=LAYOUTS,
                   help="top_class: per-anchor best class in the graph, fewer bytes for the parser; efficient_nms: "
                        "TensorRT's EfficientNMS_TRT plugin in the graph (nvinfer cluster-mode=4), using the "
                        "pre-cluster threshold, NMS IoU and topk below")
    g.add_argument("--opset", type=int_range(MIN_OPSET, MAX_OPSET, "an opset from {} to {}".format(MIN_OPSET, MAX_OPSET)),
                   default=13, help="TensorRT 8.2 (Jetson Nano) parses up to 13, 8.4 and later up to 17")
    g.add_argument("--batch-size", type=batch_size, default=1,
                   help="engine batch (one per stream); above 1 the ONNX batch axis is dynamic, as nvinfer needs")
    g.add_argument("--dynamic-batch", action="store_true", default=None,
                   help="a dynamic batch axis also for --batch-size 1")
    g.add_argument("--no-simplify", action="store_true", help="skip onnxsim")
    g.add_argument("--trt-version", default="8.2", choices=["8.2", "8.4", "none"],
                   help="check the graph's operators against this TensorRT's ONNX parser")
    g = p.add_argument_group("DeepStream")
    g.add_argument("--precision", default="fp16", choices=["fp16", "fp32", "int8"], help="engine precision")
    g.add_argument("--pre-cluster-threshold", type=probability, default=0.4)
    g.add_argument("--nms-iou-threshold", type=probability, default=0.55)
    g.add_argument("--topk", type=int_range(1, NMS_CANDIDATE_CAP), default=100,
                   help="detections kept per class (nvinfer topk; efficient_nms: max_output_boxes = topk x classes, "
                        "nvinfer then cuts each class to topk)")
    g.add_argument("--video", help="a clip for app_config.txt: copied into the bundle, its size sets streammux")
    g = p.add_argument_group("validation set (copied into the bundle; its mAP per backend recorded in model.json)")
    g.add_argument("--val-data", metavar="KIND[:PATH]",
                   help="voc:VOC_ROOT, coco:ANNOTATIONS.json (images beside it, or --val-images), openimages:ROOT "
                        "(its validation split), synthetic[:N]")
    g.add_argument("--val-images", help="coco: the image folder")
    g.add_argument("--val-split", help="voc: ImageSets/Main/<split>.txt")
    g.add_argument("--val-max-images", type=image_count, default=300, help="copy at most this many images")
    g = p.add_argument_group("preprocessing report (torchvision's float resize vs nvinfer's 8-bit stretch)")
    g.add_argument("--preprocess-min-agreement", type=probability, default=None,
                   help="fail export below this detection agreement (default: report, and warn below "
                        "{:.0f}%%)".format(100 * PREPROCESS_WARN_BELOW))
    g.add_argument("--strict-preprocessing", action="store_true",
                   help="fail export below {:.0f}%% agreement".format(100 * PREPROCESS_WARN_BELOW))
    return p


def read_labels_file(path):
    try:
        with open(path) as f:
            labels = [line.strip() for line in f if line.strip()]
    except (IOError, OSError, UnicodeDecodeError) as e:
        raise InputFileError("cannot read --labels-file {}: {}".format(path, getattr(e, "strerror", None) or e))
    if not labels:
        raise InputFileError("--labels-file {} lists no class names (expected one per line)".format(path))
    return labels


def validation_dataset(args):
    """--val-data KIND[:PATH] as a host dataset, opened (and checked) before the slow stages."""
    if not args.val_data:
        return None
    from ..data.validation import open_dataset
    kind, _, path = args.val_data.partition(":")
    if kind == "synthetic":
        if path and not path.isdigit():
            raise UsageError("--val-data synthetic[:N]: N must be a number of images, got {!r}".format(path))
        return open_dataset("synthetic", synthetic_size=int(path or 200), seed=2)
    if kind not in ("voc", "coco", "openimages") or not path:
        raise UsageError("--val-data must be voc:VOC_ROOT, coco:ANNOTATIONS.json, openimages:ROOT or synthetic[:N], "
                         "got {!r}".format(args.val_data))
    if kind == "openimages":
        return open_dataset("openimages", path, split=args.val_split)
    if kind == "coco":
        return open_dataset("coco", args.val_images or os.path.dirname(os.path.abspath(path)), ann_file=path)
    return open_dataset("voc", path, split=args.val_split)


def main(args):
    from ..device.meta import DetectionSettings
    from ..device.naming import engine_file_name
    from .pipeline import export_bundle
    labels = read_labels_file(args.labels_file) if args.labels_file else args.labels
    settings = DetectionSettings(args.pre_cluster_threshold, args.nms_iou_threshold, args.topk)
    minimum = args.preprocess_min_agreement
    if args.strict_preprocessing and minimum is None:
        minimum = PREPROCESS_WARN_BELOW
    result = export_bundle(args.model_path, args.output_dir, labels, args.layout, args.color, args.fold,
                           args.batch_size, args.dynamic_batch, args.opset, args.precision, settings,
                           not args.no_simplify, args.trt_version, args.force, args.video,
                           preprocess_min_agreement=minimum, image_mean=args.image_mean, image_std=args.image_std,
                           arch=args.arch, val_data=validation_dataset(args), val_max_images=args.val_max_images,
                           override_metadata=args.override_metadata)
    agreement = result.parity.preprocessing["agreement"]
    if minimum is None and agreement < PREPROCESS_WARN_BELOW:
        print("warning: torchvision's and nvinfer's preprocessing agree on {:.1%} of detections: the model was "
              "trained on float-resized images and DeepStream feeds it 8-bit stretched ones; train with "
              "--preprocess nvinfer to remove this at its root".format(agreement))
    t = result.timings
    print("bundle: {}  (export {:.1f} s: load+fold {:.1f}, ONNX {:.1f}, parity {:.1f})".format(
        result.bundle.path, t["total_s"], t["load_and_fold_s"], t["onnx_s"], t["parity_s"]))
    print("next, on the Jetson: python3 -m edgeexport.build_engine . --{}  (writes {})".format(
        args.precision, engine_file_name("model.onnx", args.batch_size, args.precision)))
    return 0


def cli(argv=None):
    run_cli(get_args_parser, main, argv)
