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
from .quantize import CALIB_METHODS, PERCENTILE
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
    g = p.add_argument_group("INT8 as a graph (explicit quantization: what TensorRT 8.x, 10.x and 11.x build INT8 from)")
    g.add_argument("--calib-data", metavar="KIND[:PATH]",
                   help="with --precision int8: calibrate on this dataset (the kinds of --val-data; use training "
                        "images, not the validation set) and write model_int8.onnx, Q/DQ nodes beside model.onnx")
    g.add_argument("--calib-images", help="coco: the image folder")
    g.add_argument("--calib-split", help="voc: ImageSets/Main/<split>.txt; openimages: the split")
    g.add_argument("--calib-max-images", type=image_count, default=256, help="calibrate on at most this many")
    g.add_argument("--calib-seed", type=int, default=0, help="which images, when the set has more")
    g.add_argument("--calib-method", choices=CALIB_METHODS, default="image-max",
                   help="activation ranges (symmetric): image-max (each image's largest |x|, their upper quartile), "
                        "minmax, percentile ({:g}%% of all values), entropy".format(PERCENTILE))
    g.add_argument("--calib-cache", metavar="FILE",
                   help="reuse the ranges in FILE when made for this graph, input and images; else write them there")
    g.add_argument("--int8-keep-first-conv", action="store_true",
                   help="leave the first conv (the folded normalisation) in float")
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


def dataset_arg(value, flag, images=None, split=None, synthetic_seed=2):
    """``--val-data``/``--calib-data`` KIND[:PATH] as a host dataset, opened (and checked) before the slow stages."""
    if not value:
        return None
    from ..data.validation import open_dataset
    kind, _, path = value.partition(":")
    if kind == "synthetic":
        if path and not path.isdigit():
            raise UsageError("{} synthetic[:N]: N must be a number of images, got {!r}".format(flag, path))
        return open_dataset("synthetic", synthetic_size=int(path or 200), seed=synthetic_seed)
    if kind not in ("voc", "coco", "openimages") or not path:
        raise UsageError("{} must be voc:VOC_ROOT, coco:ANNOTATIONS.json, openimages:ROOT or synthetic[:N], "
                         "got {!r}".format(flag, value))
    if kind == "openimages":
        return open_dataset("openimages", path, split=split)
    if kind == "coco":
        return open_dataset("coco", images or os.path.dirname(os.path.abspath(path)), ann_file=path)
    return open_dataset("voc", path, split=split)


def validation_dataset(args):
    return dataset_arg(args.val_data, "--val-data", args.val_images, args.val_split)


def int8_settings(args):
    """--calib-* as export.quantize.Int8Settings, or None without --calib-data."""
    if not args.calib_data:
        for flag in ("calib_images", "calib_split", "calib_cache"):
            if getattr(args, flag):
                raise UsageError("--{} needs --calib-data".format(flag.replace("_", "-")))
        return None
    if args.precision != "int8":
        raise UsageError("--calib-data makes the INT8 graph: add --precision int8 (got --precision {})".format(
            args.precision))
    from .quantize import Int8Settings
    if args.calib_cache:  # read and written back, so under the output policy (device/outputs.py); never in the
        # bundle, which export replaces whole
        from ..device.fileio import is_inside
        from ..device.outputs import RunOutputs
        RunOutputs(reads=[p for p in (args.model_path, args.video, args.labels_file) if p]).file(
            args.calib_cache, "--calib-cache")
        if is_inside(os.path.abspath(args.calib_cache), os.path.abspath(args.output_dir)):
            raise UsageError("--calib-cache {} lies inside the bundle {} that export writes whole; keep it "
                             "outside".format(args.calib_cache, args.output_dir))
    # the synthetic kind draws other images than --val-data synthetic's (seed 2): calibration is not scored on them
    dataset = dataset_arg(args.calib_data, "--calib-data", args.calib_images, args.calib_split, synthetic_seed=3)
    return Int8Settings(dataset, args.calib_max_images, args.calib_seed, args.calib_method, args.calib_cache,
                        args.int8_keep_first_conv)


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
                           override_metadata=args.override_metadata, int8=int8_settings(args))
    agreement = result.parity.preprocessing["agreement"]
    if minimum is None and agreement < PREPROCESS_WARN_BELOW:
        print("warning: torchvision's and nvinfer's preprocessing agree on {:.1%} of detections: the model was "
              "trained on float-resized images and DeepStream feeds it 8-bit stretched ones; train with "
              "--preprocess nvinfer to remove this at its root".format(agreement))
    t = result.timings
    print("bundle: {}  (export {:.1f} s: load+fold {:.1f}, ONNX {:.1f}, parity {:.1f})".format(
        result.bundle.path, t["total_s"], t["load_and_fold_s"], t["onnx_s"], t["parity_s"]))
    print("next, on the Jetson: python3 -m edgeexport.build_engine . --{}  (writes {})".format(
        args.precision, engine_file_name(result.meta.graph_for(args.precision), args.batch_size, args.precision)))
    return 0


def cli(argv=None):
    run_cli(get_args_parser, main, argv)
