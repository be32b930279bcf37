"""Export as one straight pipeline, each stage taking the previous stage's product:

    checkpoint (or in-memory model) -> deploy model -> ONNX graph -> parity -> bundle folder

``export_bundle`` is the Python API; ``export.py`` / ``python -m edgeexport.export`` is its command line.
Host-side (torch, onnx, onnxruntime).
"""
import functools
import os
import time

from .. import __version__
from ..device.errors import ParityError, UsageError
from ..device.meta import BundleMeta, DetectionSettings


class ExportResult(object):
    """What ``export_bundle`` produced: ``bundle`` (device Bundle), ``parity`` (ExportParity), ``timings``."""

    def __init__(self, bundle, parity, timings):
        self.bundle, self.parity, self.timings = bundle, parity, timings

    @property
    def meta(self):
        return self.bundle.meta


def load_source(model, labels=None, image_mean=None, image_std=None, arch=None, override_metadata=False):
    """Stage 0: (torchvision SSD in eval mode, ModelMeta, where it came from, its QAT record or None) from a
    model.pth path or from an in-memory torchvision SSDLite (whose labels must then be given)."""
    from ..model.checkpoint import describe_model, load_model
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        path = os.fspath(model)
        net, meta, raw = load_model(path, labels, image_mean, image_std, arch, override=override_metadata)
        qat = raw.get("qat") if isinstance(raw, dict) else None
        if qat is not None and not (isinstance(qat, dict) and isinstance(qat.get("amax"), dict)):
            from ..device.errors import CheckpointError
            raise CheckpointError("{} has a damaged QAT record (no input ranges)".format(path))
        return net, meta, path, qat
    if labels is None:
        raise UsageError("an in-memory model carries no class names: pass labels=[...] (the K foreground classes)")
    meta = describe_model(model, labels)
    return model.eval(), meta, type(model).__name__, None


VALIDATION_ROWS = ("pytorch", "onnxruntime", "nvinfer")
VALIDATION_THRESHOLD = 0.01


def record_validation(folder, net, meta, dataset, max_images, echo=print):
    """Copy the validation images into the (temporary) bundle ``folder``, evaluate the pytorch, onnxruntime and
    nvinfer rows on them, and record the table in ``meta.validation``: the device's evaluate then prints its drop
    against PyTorch, and build_engine --int8 compares its engine with the nvinfer row, without torch."""
    from ..data.validation import save_validation_set, to_validation_set
    from ..device.check.evaluate import VALIDATION_DIR, evaluate_bundle, format_table
    vdir = os.path.join(folder, VALIDATION_DIR)
    save_validation_set(to_validation_set(dataset, vdir, max_images, copy=True, name="annotations.json"), vdir)
    # the bundle's own set, as the device's evaluate will read it
    rows = VALIDATION_ROWS + (("int8",) if meta.onnx_int8_file else ())  # the Q/DQ twin, on nvinfer's path
    table = evaluate_bundle(folder, rows, model=net, score_threshold=VALIDATION_THRESHOLD).rows
    images = table[0]["images"]
    echo(format_table(table, "validation: {} images (score threshold {})".format(images, VALIDATION_THRESHOLD)))
    meta.validation = {"images": images, "score_threshold": VALIDATION_THRESHOLD,
                       "source": type(dataset).__name__,
                       "rows": [{k: r[k] for k in ("backend", "map", "map50", "per_class")} for r in table]}


def batch_axis(batch_size, dynamic_batch=None):
    """Whether the ONNX batch axis is dynamic. When nvinfer builds an engine from onnx-file itself (no engine, or a
    stale one), it gives the input the profile min 1, opt = max = batch-size on the GPU (DeepStream 6.0.1
    nvdsinfer_model_builder.cpp createDynamicParams, :866-889): a static batch of N > 1 cannot take that profile.
    So a batch above 1 is a dynamic axis (max = batch_size); a static one is refused with the reason."""
    if batch_size > 1 and dynamic_batch is False:
        raise UsageError("a static batch of {} cannot be built by nvinfer, which gives the ONNX input a batch "
                         "profile of 1..{} when it builds the engine itself: export it with a dynamic batch "
                         "(the default for --batch-size above 1)".format(batch_size, batch_size))
    return bool(dynamic_batch) or batch_size > 1


def export_bundle(model, output_dir, labels=None, layout="boxes_scores", color="rgb", fold="exact", batch_size=1,
                  dynamic_batch=None, opset=13, precision="fp16", settings=None, simplify=True, trt_version="8.2",
                  force=False, video=None, images=None, preprocess_min_agreement=None, image_mean=None,
                  image_std=None, arch=None, echo=print, val_data=None, val_max_images=300, override_metadata=False,
                  int8=None):
    """Export ``model`` (a model.pth path, or an in-memory torchvision SSDLite with ``labels``) to a DeepStream
    bundle in ``output_dir``. Raises ParityError (nothing written) when the ONNX graph does not reproduce the
    original model, and when ``preprocess_min_agreement`` is set and nvinfer's preprocessing agrees less.
    ``dynamic_batch`` None: dynamic when ``batch_size`` > 1 (see batch_axis). ``val_data``: a host dataset
    (edgeexport.data) whose first ``val_max_images`` images go into the bundle's validation/ with the mAP of the
    pytorch, onnxruntime and nvinfer rows recorded in model.json. ``override_metadata``: let ``labels``,
    ``image_mean``, ``image_std``, ``arch`` replace what a checkpoint records (else a contradiction is refused).
    ``int8`` (export.quantize.Int8Settings, with ``precision="int8"``): also write the explicitly quantized twin
    (Q/DQ nodes) calibrated on its dataset, which TensorRT 8.x, 10.x and 11.x build an INT8 engine from.
    Returns ExportResult."""
    from .bundle import check_output_dir, write_bundle
    from .deploy import build_deploy_model
    from .onnx_graph import export_onnx, int8_twin
    from .parity import check_export, fixture_images

    t0 = time.perf_counter()
    if int8 is not None and precision != "int8":
        raise UsageError("calibration data makes an INT8 graph: export with precision int8 (--precision int8), "
                         "got {}".format(precision))
    dynamic_batch = batch_axis(batch_size, dynamic_batch)
    check_output_dir(output_dir, force, inputs=[model if isinstance(model, str) else None, video], video=video)
    if video is not None:
        from ..data.frames import video_frame_size
        video_frame_size(video)  # a bad clip fails now, not after the slow stages
    net, model_meta, source, qat = load_source(model, labels, image_mean, image_std, arch, override_metadata)
    if qat is not None and precision == "int8":
        if int8 is not None:
            raise UsageError("{} was trained with QAT and carries its INT8 ranges: export it without calibration "
                             "data".format(source))
        if fold != "exact":
            raise UsageError("QAT quantized the first conv as the exact fold has it: export with --fold exact")
    from ..model.checkpoint import weights_sha256
    weights = weights_sha256(net)  # before the fold changes the first conv
    # efficient_nms = the boxes_scores graph + TensorRT's NMS plugin node appended to it
    graph_layout = "boxes_scores" if layout == "efficient_nms" else layout
    deploy = build_deploy_model(net, model_meta, fold, color, graph_layout)
    meta = BundleMeta(model_meta, color, fold, layout, opset, batch_size, dynamic_batch,
                      int(deploy.anchors.shape[0]), "model.onnx", "", precision,
                      settings or DetectionSettings(), __version__, weights_sha256=weights)
    t1 = time.perf_counter()
    graph = export_onnx(deploy, meta, simplify, trt_version)
    if int8 is not None or (qat is not None and precision == "int8"):
        int8_twin(graph, meta, int8, trt_version, echo, qat=None if qat is None else (net, qat))
    elif qat is not None:
        echo("note: {} was trained with QAT; export --precision int8 writes its Q/DQ graph with the ranges it "
             "learnt with".format(source))
    t2 = time.perf_counter()
    parity = check_export(net, graph, meta, images if images is not None else fixture_images(model_meta.labels))
    t3 = time.perf_counter()
    for line in parity.lines(layout):
        echo(line)
    if not parity.ok:
        raise ParityError("export parity failed (see the table above; nothing was written)")
    pre = parity.preprocessing["agreement"]
    if preprocess_min_agreement is not None and pre < preprocess_min_agreement:
        raise ParityError("preprocessing parity {:.1%} is below the minimum {:.0%} (nothing was written)".format(
            pre, preprocess_min_agreement))
    meta.extra = {"simplified": graph.simplified, "trt_version_checked": trt_version,
                  "export_seconds": round(time.perf_counter() - t0, 2)}
    validate = None if val_data is None else functools.partial(
        record_validation, net=net, meta=meta, dataset=val_data, max_images=val_max_images, echo=echo)
    bundle = write_bundle(output_dir, meta, graph, parity, video, force, source, validate)
    timings = {"load_and_fold_s": t1 - t0, "onnx_s": t2 - t1, "parity_s": t3 - t2,
               "total_s": time.perf_counter() - t0}
    return ExportResult(bundle, parity, timings)
