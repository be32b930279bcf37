"""INT8 as a graph (explicit quantization): model.onnx with QuantizeLinear/DequantizeLinear pairs, calibrated on the
host, so that the INT8 engine takes its scales from the graph on every TensorRT a board meets.

Why a graph: TensorRT 10.1 deprecated every INT8 calibrator ("Deprecated in TensorRT 10.1. Superseded by explicit
quantization", tensorrt-stubs 10.13 IInt8EntropyCalibrator2) and 11.x removed them (strongly typed networks take
precision from the graph); explicit quantization is read by the ONNX parser since 8.0 (onnx-tensorrt 8.2-GA
builtin_op_importers.cpp:1122-1242, QuantDequantLinearHelper).

Why ONNX Runtime's quantizer and not NVIDIA Model Optimizer: modelopt 0.47.0's ONNX INT8 PTQ is ONNX Runtime's
``quantize_static`` with TensorRT-minded options (modelopt/onnx/quantization/int8.py:45 imports it, :274 calls it;
ort_utils.py:704-720 sets the options), and its "onnx" extra pins onnxruntime-gpu~=1.24.2 and onnx~=1.21 on x86
Linux, which would replace this project's onnxruntime and onnx. So the quantizer is called directly, with the
choices TensorRT's ONNX parser requires, each checked against its source:

- INT8 only, symmetric: zero points all 0 ("TRT only supports symmetric quantization - zeroPt must be all zeros",
  8.2-GA builtin_op_importers.cpp:1169), scales positive (:1149-1150), the zero point given as the third input
  (:1133, "requires 3 inputs");
- weights per output channel (axis 0 of a Conv's KCRS weights: "The number of scales is not equal to the number of
  output channels", :1191-1203), activations per tensor ("Activations-quantization does not support per-axis");
- weights kept in float with a Q->DQ pair in front of the conv (the form NVIDIA's own exporters write; modelopt's
  "AddQDQPairToWeight"), biases in float, and no Q/DQ on outputs: TensorRT places the conv's output quantization
  from the next layer's input Q;
- only Conv inputs quantized: the decode, softmax and NMS tail stay float.

Calibration runs the fp32 graph under ONNX Runtime on images prepared exactly as nvinfer prepares them (8-bit
stretch, offsets): what the engine will be fed. The default range ("image-max": each image's largest |x|, their
upper quartile, model.qat.image_max_range) is not one of ONNX Runtime's calibrators: those cover the rare image
whose activations explode, which on SSDLite-Large leaves the other images a few INT8 steps (RESULTS.md).
Host-side (onnx, onnxruntime).
"""
import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
import time

import numpy as np

from ..device.errors import DatasetError, ExportError, UsageError

QDQ_ONNX = "model_int8.onnx"
QDQ_RECORD = "model_int8.calibration.json"
CALIB_METHODS = ("image-max", "minmax", "percentile", "entropy")
QUANTIZED_OPS = ("Conv",)
PERCENTILE = 99.999
SENSITIVITY_IMAGES = 8
CALIB_CHUNK = 16  # images per collect_data call (memory: see calibrate.Reader)


def check_method(method):
    if method not in CALIB_METHODS:
        raise UsageError("calibration method must be one of {}, got {!r}".format(", ".join(CALIB_METHODS), method))


class Int8Settings(object):
    """export --precision int8 --calib-data: the dataset to calibrate on (an edgeexport.data dataset), at most
    ``max_images`` of it chosen by ``seed``, the calibration ``method``, a ``cache`` file (or None), and whether the
    first conv (the folded normalisation) stays float."""

    def __init__(self, dataset, max_images=256, seed=0, method="image-max", cache=None, keep_first_conv=False):
        check_method(method)  # before the slow stages
        if int(max_images) < 1:
            raise UsageError("calibration needs at least 1 image, got max_images={}".format(max_images))
        self.dataset, self.max_images, self.seed, self.method = dataset, int(max_images), int(seed), method
        self.cache, self.keep_first_conv = cache, bool(keep_first_conv)


class CalibrationImages(object):
    """Up to ``max_images`` images of ``dataset`` (an edgeexport.data dataset), chosen by ``seed``, each prepared as
    nvinfer prepares a frame for ``meta`` (BundleMeta). ``digest``: sha256 of the prepared inputs, in order."""

    def __init__(self, dataset, meta, max_images=256, seed=0):
        n = len(dataset)
        if n < 1:
            raise DatasetError("the calibration set has no images")
        order = np.random.RandomState(int(seed)).permutation(n)[:int(max_images)]
        self.dataset, self.meta, self.indices = dataset, meta, sorted(int(i) for i in order)
        self._inputs = None

    def __len__(self):
        return len(self.indices)

    def inputs(self, progress=True):
        """[1, 3, H, W] float32 per image (cached once prepared)."""
        if self._inputs is None:
            from ..device.preprocess import nvinfer_preprocess
            h, w = self.meta.model.input_size
            items = self.indices
            if progress:
                from tqdm import tqdm
                items = tqdm(items, desc="calibration images", unit="img", leave=False)
            out = []
            for i in items:
                rgb = self.dataset[i][0]
                out.append(nvinfer_preprocess(np.asarray(rgb), w, h, self.meta.offsets, self.meta.net_scale_factor,
                                              self.meta.color_format, 1).astype(np.float32))
            self._inputs = out
        return self._inputs

    @property
    def digest(self):
        h = hashlib.sha256()
        for x in self.inputs(progress=False):
            h.update(np.ascontiguousarray(x).tobytes())
        return h.hexdigest()


def cache_identity(fp32_sha256, meta, images, method):
    """What a calibration depends on, as TensorRT's cache record keys it (calibrator.cache_identity): the graph, the
    input it takes, the images as prepared, and the method with its parameter (a cache of another quantile or
    percentile is another calibration)."""
    return {"onnx_sha256": fp32_sha256, "input_shape": list(meta.input_shape), "images": len(images),
            "images_sha256": images.digest, "method": method, "parameter": method_parameter(method),
            "quantized_ops": list(QUANTIZED_OPS)}


def method_parameter(method):
    """image-max: the quantile of the images' maxima; percentile: the percentile of all values; else None."""
    return {"image-max": _image_max_quantile, "percentile": lambda: PERCENTILE}.get(method, lambda: None)()


def read_cache(path, identity):
    """The ranges a cache at ``path`` holds for ``identity``, or None (no file, another identity, not a cache)."""
    try:
        with open(path) as f:
            data = json.load(f)
        if data.get("identity") != identity:
            return None
        return {str(k): (float(v[0]), float(v[1])) for k, v in data["ranges"].items()}
    except Exception:  # by design: anything that is not a cache made for this identity is "no cache"
        return None


def _graph_input(images, x):
    batch = 1 if images.meta.dynamic_batch else int(images.meta.batch_size)
    return {images.meta.input_name: np.repeat(x, batch, 0) if batch > 1 else x}


def conv_input_session(fp32_bytes, names=None):
    """(ONNX Runtime session, names): the fp32 graph with the tensors ``names`` as its outputs (default: every
    non-constant tensor a Conv reads)."""
    import onnx
    import onnxruntime as ort
    from onnx import helper
    proto = onnx.load_from_string(fp32_bytes)
    if names is None:
        consts = {t.name for t in proto.graph.initializer}
        names = sorted({n.input[0] for n in proto.graph.node if n.op_type == "Conv" and n.input[0] not in consts})
    del proto.graph.output[:]
    proto.graph.output.extend([helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in names])
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]), list(names)


def image_max_ranges(fp32_bytes, images):
    """{Conv input: (-r, r)}, r = model.qat.image_max_range of the images' largest |x| (one image per run, so
    that only maxima are kept)."""
    from ..model.qat import image_max_range
    session, names = conv_input_session(fp32_bytes)
    maxima = {n: [] for n in names}
    for x in images.inputs():
        for name, value in zip(names, session.run(names, _graph_input(images, x))):
            maxima[name].append(float(np.abs(value).max()))
    return {n: (-image_max_range(v), image_max_range(v)) for n, v in maxima.items()}


def calibrate(fp32_bytes, images, method="image-max", echo=print):
    """{tensor name: (low, high)} of every Conv input over ``images``: image_max_ranges, or ONNX Runtime's
    calibrator ``method``."""
    check_method(method)
    t0 = time.perf_counter()
    if method == "image-max":
        ranges = image_max_ranges(fp32_bytes, images)
    else:
        ranges = _ort_calibrate(fp32_bytes, images, method)
    echo("calibrated {} tensors on {} images ({}) in {:.1f} s".format(len(ranges), len(images), method,
                                                                     time.perf_counter() - t0))
    return ranges


def _ort_calibrate(fp32_bytes, images, method):
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, create_calibrator
    feeds = images.inputs()

    class Reader(CalibrationDataReader):
        """The images of one chunk: ONNX Runtime's calibrators keep every intermediate output of a collect_data
        call in memory (23 GB for SSDLite-Large on 256 images, killed here by the OOM killer), and merge their
        ranges and histograms across calls."""

        def __init__(self, chunk):
            self.chunk = list(chunk)

        def get_next(self):
            if not self.chunk:
                return None
            return _graph_input(images, self.chunk.pop(0))

    kinds = {"minmax": (CalibrationMethod.MinMax, {"symmetric": True}),
             "percentile": (CalibrationMethod.Percentile, {"symmetric": True, "percentile": PERCENTILE}),
             "entropy": (CalibrationMethod.Entropy, {"symmetric": True})}
    kind, options = kinds[method]
    with tempfile.TemporaryDirectory(prefix="edgeexport-calib-") as tmp:
        src = os.path.join(tmp, "model.onnx")
        with open(src, "wb") as f:
            f.write(fp32_bytes)
        calibrator = create_calibrator(src, list(QUANTIZED_OPS), os.path.join(tmp, "augmented.onnx"), kind,
                                       extra_options=options)
        with contextlib.redirect_stdout(io.StringIO()):  # ONNX Runtime's histogram calibrators print as they go
            for i in range(0, len(feeds), CALIB_CHUNK):
                calibrator.collect_data(Reader(feeds[i:i + CALIB_CHUNK]))
            data = calibrator.compute_data()
        del calibrator
    ranges = {}
    for name in data:
        low, high = data[name].range_value
        ranges[str(name)] = (float(np.asarray(low).reshape(-1)[0]), float(np.asarray(high).reshape(-1)[0]))
    return ranges


def first_conv_name(proto, input_name):
    """The Conv that reads the graph input (the one the normalisation is folded into)."""
    for node in proto.graph.node:
        if node.op_type == "Conv" and input_name in node.input:
            return node.name
    return None


def quantize_graph(fp32_bytes, ranges, exclude=()):
    """The Q/DQ graph (onnx.ModelProto) of ``fp32_bytes`` with activation ranges ``ranges``; nodes named in
    ``exclude`` stay float."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import TensorData, TensorsData
    tensors = TensorsData(CalibrationMethod.MinMax, {
        k: TensorData(lowest=np.float32(lo), highest=np.float32(hi)) for k, (lo, hi) in ranges.items()})
    options = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
               "AddQDQPairToWeight": True, "DedicatedQDQPair": False, "ForceQuantizeNoInputCheck": False,
               "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS),
               "QDQOpTypePerChannelSupportToAxis": {"Conv": 0}}
    quiet = logging.getLogger()  # the quantizer logs each bias it copies at INFO on the root logger
    level = quiet.level
    quiet.setLevel(max(level, logging.WARNING))
    try:
        return _quantize(fp32_bytes, tensors, exclude, options)
    finally:
        quiet.setLevel(level)


def _quantize(fp32_bytes, tensors, exclude, options):
    import onnx
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer
    from pathlib import Path
    with tempfile.TemporaryDirectory(prefix="edgeexport-qdq-") as tmp:
        src = os.path.join(tmp, "model.onnx")
        with open(src, "wb") as f:
            f.write(fp32_bytes)
        model = load_model_with_shape_infer(Path(src))
        quantizer = QDQQuantizer(model, True, False, QuantType.QInt8, QuantType.QInt8, tensors, None, list(exclude),
                                 list(QUANTIZED_OPS), options)
        quantizer.quantize_model()
        quantizer.model.topological_sort()  # the quantizer appends its nodes; ONNX wants producers first
        proto = quantizer.model.model
    float_inputs_outside_convs(proto)
    # shape inference's value_info is not part of the graph's contract (and names tensors TensorRT never sees)
    del proto.graph.value_info[:]
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        raise ExportError("onnx.checker rejected the Q/DQ graph: {}".format(str(e).splitlines()[0]))
    check_qdq_for_tensorrt(proto)
    return proto


def float_inputs_outside_convs(proto):
    """The quantizer gives a tensor's Q/DQ pair to all its readers; a residual Add that reads a conv's input would
    then add the rounded value, and a conv left float would read it rounded. Such readers get the float tensor
    back: only quantized convs read quantized values, which is what QAT trains (model/qat.py) and what TensorRT
    needs to fuse (a DQ in front of each conv)."""
    producer = {o: n for n in proto.graph.node for o in n.output}
    for node in proto.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        weight = producer.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if weight is not None and weight.op_type == "DequantizeLinear":
            continue  # a quantized conv: both its inputs dequantized
        # (a conv left float reads its input float too)
        for i, name in enumerate(node.input):
            dq = producer.get(name)
            if dq is not None and dq.op_type == "DequantizeLinear":
                q = producer.get(dq.input[0])
                if q is not None and q.op_type == "QuantizeLinear":
                    node.input[i] = q.input[0]


def check_qdq_for_tensorrt(proto):
    """Every Q/DQ node as TensorRT 8.2's parser takes it (the rules cited in the module's docstring): 3 inputs, a
    constant positive scale, an all-zero INT8 zero point of the scale's size, per-channel only on a constant."""
    from onnx import numpy_helper
    consts = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    problems = []
    for node in proto.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if len(node.input) != 3:
            problems.append("{}: {} inputs, TensorRT 8.2 needs 3".format(node.name, len(node.input)))
            continue
        scale, zero = consts.get(node.input[1]), consts.get(node.input[2])
        if scale is None or zero is None:
            problems.append("{}: scale or zero point is not a constant".format(node.name))
            continue
        if not (scale > 0).all() or zero.dtype != np.int8 or zero.any() or zero.size != scale.size:
            problems.append("{}: scale {} / zero point {} ({}) is not symmetric INT8".format(
                node.name, scale.ravel()[:3], zero.ravel()[:3], zero.dtype))
        if scale.size > 1 and node.input[0] not in consts and node.op_type == "QuantizeLinear":
            problems.append("{}: per-channel scales on an activation".format(node.name))
    if problems:
        raise ExportError("the Q/DQ graph breaks TensorRT's rules: {}".format("; ".join(problems[:5])))


def qdq_summary(proto):
    """Counts a reader wants: Q/DQ nodes, convs quantized, convs left float."""
    q = sum(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    dq = sum(n.op_type == "DequantizeLinear" for n in proto.graph.node)
    quantized_inputs = {n.output[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    quantized = [n.name for n in convs if n.input[0] in quantized_inputs and n.input[1] in quantized_inputs]
    return {"quantize_nodes": q, "dequantize_nodes": dq, "convs_quantized": len(quantized),
            "convs_float": sorted(n.name for n in convs if n.name not in quantized)}


def layer_errors(fp32_bytes, feeds, ranges):
    """{Conv node name: int8_conv_error} over ``feeds`` (graph inputs, one image each), each conv fed its float
    input: how much INT8 costs each conv alone, on the median image. Per-tensor activations cannot hold a tensor
    whose channels differ by orders of magnitude (RESULTS.md)."""
    import onnx
    import torch
    from onnx import helper, numpy_helper
    from ..model.qat import int8_conv_error
    proto = onnx.load_from_string(fp32_bytes)
    consts = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    convs = [n for n in proto.graph.node if n.op_type == "Conv" and n.input[0] in ranges and n.input[1] in consts]
    session, names = conv_input_session(fp32_bytes, sorted({n.input[0] for n in convs}))
    inputs = {}
    for x in feeds:
        for name, value in zip(names, session.run(None, {session.get_inputs()[0].name: x})):
            inputs.setdefault(name, []).append(torch.from_numpy(np.array(value)))
    out = {}
    for n in convs:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        w = torch.from_numpy(np.array(consts[n.input[1]]))
        bias = torch.from_numpy(np.array(consts[n.input[2]])) if len(n.input) > 2 and n.input[2] in consts else None
        amax = max(abs(ranges[n.input[0]][0]), abs(ranges[n.input[0]][1]))
        out[n.name] = int8_conv_error(torch.cat(inputs[n.input[0]]), w, bias, attrs, amax)
    return out


def float_convs(errors, max_error, echo=print):
    """The convs INT8 would wreck (error above ``max_error``: model.qat.MAX_LAYER_ERROR, the limit QAT keeps too),
    said; they stay float (FP16 on weak typing)."""
    keep = sorted(n for n, e in errors.items() if e > max_error)
    if keep:
        worst = sorted(errors.items(), key=lambda kv: -kv[1])[:3]
        echo("INT8 sensitivity: {} of {} convs stay float (their INT8 output alone is off by more than {:.0%}; worst "
             "{})".format(len(keep), len(errors), max_error, ", ".join("{} {:.0%}".format(k, v) for k, v in worst)))
    return keep


def _image_max_quantile():
    from ..model.qat import RANGE_QUANTILE
    return RANGE_QUANTILE


def make_qdq_graph(fp32_bytes, fp32_sha256, meta, images, method="image-max", cache_path=None, keep_first_conv=False,
                   echo=print, max_layer_error=None):
    """(Q/DQ bytes, record) for the fp32 graph ``fp32_bytes`` (what ONNX Runtime runs: the graph before any
    TensorRT plugin node). ``cache_path``: ranges reused when made for the same graph, input, images and method,
    written otherwise. ``keep_first_conv``: the conv that holds the folded normalisation stays float. Convs whose INT8
    output alone is off by more than ``max_layer_error`` (default model.qat.MAX_LAYER_ERROR; layer_errors, on the
    first calibration images) stay float too."""
    if max_layer_error is None:  # imported here: model.qat imports torch, which export's command line need not load
        from ..model.qat import MAX_LAYER_ERROR as max_layer_error
    identity = cache_identity(fp32_sha256, meta, images, method)
    ranges = read_cache(cache_path, identity) if cache_path else None
    if ranges is not None:
        echo("calibration cache {} matches this graph and these images: reused".format(cache_path))
    else:
        if cache_path and os.path.exists(cache_path):
            echo("calibration cache {} was made for another graph or other images: recalibrating".format(cache_path))
        ranges = calibrate(fp32_bytes, images, method, echo)
        if cache_path:
            from ..device.fileio import atomic_write_text
            atomic_write_text(cache_path, json.dumps({"identity": identity, "ranges": ranges}, indent=1,
                                                     sort_keys=True) + "\n")
    exclude = []
    if keep_first_conv:
        import onnx
        first = first_conv_name(onnx.load_from_string(fp32_bytes), meta.input_name)
        if first:
            exclude.append(first)
    errors = layer_errors(fp32_bytes, images.inputs(progress=False)[:SENSITIVITY_IMAGES], ranges)
    exclude = sorted(set(exclude) | set(float_convs(errors, max_layer_error, echo)))
    qdq = quantize_graph(fp32_bytes, ranges, exclude)
    record = {"identity": identity, "method": method, "percentile": PERCENTILE if method == "percentile" else None,
              "quantile": _image_max_quantile() if method == "image-max" else None,
              "images": len(images), "images_sha256": identity["images_sha256"], "fp32_onnx_sha256": fp32_sha256,
              "quantized_ops": list(QUANTIZED_OPS), "kept_float": exclude, "max_layer_error": max_layer_error,
              "layer_errors": {k: round(v, 4) for k, v in sorted(errors.items())}, "summary": qdq_summary(qdq),
              "ranges": ranges}
    return qdq, record


def qat_qdq_graph(fp32_bytes, fp32_sha256, meta, model, qat_record, echo=print):
    """(Q/DQ graph, record) from a QAT checkpoint: its input ranges on the tensors its convs read in the graph
    (model.qat.ranges_for_graph), weights quantized from the weights as QAT quantized them."""
    from ..model.qat import ranges_for_graph
    ranges, exclude = ranges_for_graph(model, meta.model, qat_record, fp32_bytes, meta.channel_order)
    echo("QAT checkpoint: {} input ranges placed on the graph's convs, {} convs float as QAT left them (no "
         "calibration)".format(len(ranges), len(exclude)))
    qdq = quantize_graph(fp32_bytes, ranges, exclude)
    record = {"identity": {"onnx_sha256": fp32_sha256, "input_shape": list(meta.input_shape), "method": "qat"},
              "method": "qat", "range": qat_record.get("range") or "percentile {}".format(qat_record.get("percentile")),
              "images": 0, "images_sha256": "",
              "fp32_onnx_sha256": fp32_sha256, "quantized_ops": list(QUANTIZED_OPS), "kept_float": exclude,
              "summary": qdq_summary(qdq), "ranges": ranges}
    return qdq, record
