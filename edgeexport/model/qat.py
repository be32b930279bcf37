"""Quantization-aware training that lands exactly on the graph export writes (export/quantize.py).

Export quantizes the deploy graph: batch-norm folded into its conv (the ONNX has no BatchNormalization node), the
input normalisation folded into the first conv (export/fold.py, "exact": that conv sees ``255*std*x_norm`` and
weights divided by ``255*std`` per input channel), each conv's weights per output channel and each conv's input
per tensor, symmetric INT8 with scale ``absmax / 127`` (ONNX Runtime's symmetric range, quant_utils.py
get_qmin_qmax_for_qType / compute_scale_zp) and QuantizeLinear's rounding (half to even) and clamp (-128..127).

So QAT fake-quantizes the same tensors the same way: batch-norm is frozen (eval statistics) and folded into its
conv in the forward pass, the first conv is quantized in the folded space, weight scales follow the weights at
every step (as export computes them from the final weights), and activation ranges are calibrated once at the
start, by the statistic export's default calibration uses (image_max_range), and then held (as a Q/DQ graph holds
them). Gradients pass the rounding straight through (_fake_quant). Nothing is added to the state dict: a QAT
checkpoint loads as a plain SSDLite, and its ranges travel beside the weights (``checkpoint["qat"]``), which export
reads instead of calibrating. Host-side (torch).
"""
import torch
from torch import nn

from ..device.errors import CheckpointError, ExportError

QMAX = 127
# A tensor's range: each image's largest |x|, the upper quartile over the images (image_max_range).
RANGE_QUANTILE = 75.0
RANGE_METHOD = "image-max"  # its name, as export's --calib-method spells it
# A conv whose INT8 output alone is off by more than this (relative RMS, the median image) stays float: on the
# retrained Large, 0.1 keeps 3-5 of 98 convs float (the heads' first depthwise convs among them) and takes PTQ's
# loss from 0.89-1.19 points (at 0.2: none float) to 0.67-0.92; the Small keeps all 88 in INT8 (RESULTS.md).
MAX_LAYER_ERROR = 0.1


def _scale(amax):
    """float32(absmax / 127), computed in float64 as ONNX Runtime computes it."""
    return (amax.double() / QMAX).float().clamp_min(torch.finfo(torch.float32).tiny)


def _fake_quant(x, scale):
    """QuantizeLinear then DequantizeLinear as ONNX defines them: x / scale rounded half to even, clamped to
    -128..127, times scale (PyTorch's fake_quantize ops multiply by 1/scale instead, which rounds some values the
    other way). The gradient passes straight through inside the range and is 0 outside it."""
    q = x / scale
    inside = (q >= -128.5) & (q <= 127.5)
    y = torch.clamp(torch.round(q.detach()), -128, 127) * scale
    return y.detach() + (x - x.detach()) * inside + (y - y.detach())


def fake_quant_tensor(x, amax):
    return _fake_quant(x, _scale(torch.as_tensor(amax, dtype=torch.float32)).to(x.device, x.dtype))


def fake_quant_channels(w):
    scale = _scale(w.detach().abs().amax(dim=(1, 2, 3))).to(w.device, w.dtype).view(-1, 1, 1, 1)
    return _fake_quant(w, scale)


def image_max_range(image_maxima):
    """A tensor's INT8 range from each calibration image's largest |x|: their upper quartile.

    Why not the largest, nor a percentile of all values (RESULTS.md, "INT8 as a graph"): on SSDLite-Large a few
    percent of images drive the last stage's activations far above the typical image's (|x| 3145 where the median
    image reaches 8, on the first Large trained), and a range that covers them (minmax, entropy, percentile 99.999
    of all values: those images hold enough of the values) leaves the typical image a few INT8 steps: mAP 0.0 on
    that Large, 1.1-1.7 points lost on the retrained one. Ranges from the images' maxima clip those few images
    instead. Which quantile is a close call between models (the retrained Large prefers the median, the first one
    the upper quartile by 0.5-1 point); the upper quartile with MAX_LAYER_ERROR's guard kept both within a point."""
    import numpy as np
    return float(np.percentile(np.asarray(image_maxima, np.float64), RANGE_QUANTILE))


def int8_conv_error(x, w, bias, attrs, x_amax):
    """How far one conv's output moves when its input (per tensor, ``x_amax``) and weights (per output channel) are
    quantized as the Q/DQ graph quantizes them: relative RMS error against the same conv in float, per image of the
    batch ``x``, the median image's (a range that clips a rare image's outliers on purpose, image_max_range, must
    not count those images against the conv). Torch tensors."""
    import torch.nn.functional as F
    pads = attrs.get("pads", [0, 0, 0, 0])
    args = (attrs.get("strides", [1, 1]), (pads[0], pads[1]), attrs.get("dilations", [1, 1]), attrs.get("group", 1))
    with torch.no_grad():
        y = F.conv2d(x, w, bias, *args)
        yq = F.conv2d(fake_quant_tensor(x, x_amax), fake_quant_channels(w), bias, *args)
        dims = tuple(range(1, y.dim()))
        per_image = torch.linalg.vector_norm(yq - y, dim=dims) / torch.linalg.vector_norm(y, dim=dims).clamp_min(1e-12)
        return float(per_image.median())


def conv_bn_pairs(model):
    """[(name, conv, bn or None)] of every Conv2d of the detector, its BatchNorm2d when one follows it in a
    Sequential (torchvision's Conv2dNormActivation)."""
    following = {}
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            kids = list(seq.children())
            for a, b in zip(kids, kids[1:]):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    following[id(a)] = b
    return [(name, m, following.get(id(m))) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def folded_weight_bias(conv, bn):
    """The conv's weight and bias with its batch-norm (eval statistics) folded in, as export's graph has them."""
    w, b = conv.weight, conv.bias
    if bn is None:
        return w, b
    g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = bn.bias - bn.running_mean * g + (b * g if b is not None else 0)
    return w * g.view(-1, 1, 1, 1), bias


class QatDetector(object):
    """Puts fake quantization into ``model`` (a torchvision SSDLite) in place; ``meta`` (ModelMeta) gives the
    normalisation folded into the first conv. ``amax``: {conv name: input range} to hold (from a checkpoint), else
    ``calibrate`` sets it."""

    def __init__(self, model, meta, amax=None, float_convs=()):
        from .ssdlite import find_first_conv
        self.model, self.pairs = model, conv_bn_pairs(model)
        _, self.first = find_first_conv(model.backbone)
        std = torch.tensor(meta.image_std, dtype=torch.float32)
        self.fold = (255.0 * std).view(1, 3, 1, 1)  # the first conv's input, as the deploy graph sees it
        self.amax = dict(amax or {})
        self.float_convs = set(float_convs)  # convs INT8 would wreck: left float here and in the graph
        for name, conv, bn in self.pairs:
            conv.forward = self._forward(name, conv, bn)
            if bn is not None:
                bn.forward = lambda x: x  # folded into the conv; its statistics frozen
        if amax is not None:
            missing = sorted(n for n, _, _ in self.pairs if n not in self.amax)
            if missing:
                raise CheckpointError("the QAT record has no range for {} convs ({}...): not a QAT checkpoint of "
                                      "this model".format(len(missing), missing[0]))

    def _forward(self, name, conv, bn):
        def forward(x):
            w, b = folded_weight_bias(conv, bn)
            if name in self.float_convs:
                return conv._conv_forward(x, w, b)
            amax = self.amax.get(name)
            if conv is self.first:
                a = self.fold.to(x.device, x.dtype)
                xq = x if amax is None else fake_quant_tensor(x * a, amax) / a
                wq = fake_quant_channels(w / a.view(1, 3, 1, 1)) * a.view(1, 3, 1, 1)
            else:
                xq = x if amax is None else fake_quant_tensor(x, amax)
                wq = fake_quant_channels(w)
            return conv._conv_forward(xq, wq, b)
        return forward

    @torch.no_grad()
    def calibrate(self, batches, echo=print):
        """Input ranges from ``batches`` (the model's own inputs: lists of images, or whatever ``model(...)``
        takes in eval mode): each image's largest |x|, their upper quartile (image_max_range, as export calibrates);
        convs that read the same tensor share the largest (one Q/DQ pair per tensor in the graph)."""
        seen, hooks, first_ptrs, count = {}, [], {}, [0]
        first = self.first

        def hook(name, conv):
            def f(module, inputs):
                x = inputs[0].detach().float()
                if conv is first:
                    x = x * self.fold.to(x.device)
                seen.setdefault(name, []).extend(x.abs().flatten(1).amax(1).tolist())
                if count[0] == 0:  # which convs read one tensor: held alive through the first batch, so that
                    first_ptrs[name] = inputs[0]  # no freed tensor's memory is taken for another's

            return f
        for name, conv, _ in self.pairs:
            hooks.append(conv.register_forward_pre_hook(hook(name, conv)))
        was_training = self.model.training
        self.model.eval()
        batches_seen = None
        try:
            for batch in batches:
                self.model(batch)
                count[0] += 1
                batches_seen = batch
        finally:
            for h in hooks:
                h.remove()
            self.model.train(was_training)
        n = count[0]
        if not n or not seen:
            raise ExportError("QAT calibration got no batches")
        amax = {k: image_max_range(v) for k, v in seen.items()}
        by_ptr = {}
        for name, tensor in first_ptrs.items():
            by_ptr.setdefault((tensor.data_ptr(), tuple(tensor.shape)), []).append(name)
        first_ptrs.clear()
        for names in by_ptr.values():
            top = max(amax[n] for n in names)
            for name in names:
                amax[name] = top
        self.amax = amax
        self.float_convs = set(self._wrecked(batches_seen))
        echo("QAT: input ranges of {} convs calibrated on {} batches (each image's largest |x|, their {:g}th "
             "percentile); {} convs stay float (INT8 alone puts their output off by more than the {:.0%} export "
             "allows)".format(len(amax), n, RANGE_QUANTILE, len(self.float_convs), MAX_LAYER_ERROR))
        return amax

    @torch.no_grad()
    def _wrecked(self, batch):
        """The convs whose INT8 output alone is off by more than export's limit on ``batch`` (export/quantize.py
        layer_errors, the same measure in the same space: folded weights, the first conv's deploy input)."""
        errors, hooks = {}, []
        first = self.first

        def hook(name, conv, bn):
            def f(module, inputs):
                x = inputs[0].detach().float()
                w, b = folded_weight_bias(conv, bn)
                w, b = w.float(), None if b is None else b.float()
                if conv is first:
                    a = self.fold.to(x.device)
                    x, w = x * a, w / a.view(1, 3, 1, 1)
                attrs = {"strides": list(conv.stride), "pads": list(conv.padding) * 2,
                         "dilations": list(conv.dilation), "group": conv.groups}
                errors[name] = int8_conv_error(x, w, b, attrs, self.amax[name])
            return f
        for name, conv, bn in self.pairs:
            hooks.append(conv.register_forward_pre_hook(hook(name, conv, bn)))
        kept, self.float_convs = self.float_convs, set(n for n, _, _ in self.pairs)
        was_training = self.model.training
        self.model.eval()
        try:
            self.model(batch)  # every conv float meanwhile: each measured on its float input, as export does
        finally:
            for h in hooks:
                h.remove()
            self.model.train(was_training)
            self.float_convs = kept
        return sorted(n for n, e in errors.items() if e > MAX_LAYER_ERROR)

    def record(self):
        return {"amax": {k: float(v) for k, v in self.amax.items()}, "range": RANGE_METHOD,
                "fold": "exact", "bn": "frozen, folded", "float_convs": sorted(self.float_convs)}


def ranges_for_graph(model, meta, record, fp32_bytes, channel_order=(0, 1, 2)):
    """({ONNX tensor: (low, high)}, [Conv nodes left float]) for the graph ``fp32_bytes`` exported from ``model``:
    each quantized conv's QAT input range on the tensor its ONNX Conv reads, and the convs QAT left float. Convs
    are matched by their folded weights (export folds batch-norm and, in the first conv, the normalisation), so
    names need not agree."""
    import numpy as np
    import onnx
    from onnx import numpy_helper
    from .ssdlite import find_first_conv
    proto = onnx.load_from_string(fp32_bytes)
    consts = {t.name: t for t in proto.graph.initializer}
    _, first = find_first_conv(model.backbone)
    fold = (255.0 * torch.tensor(meta.image_std, dtype=torch.float64)).view(1, 3, 1, 1)
    mine = []
    with torch.no_grad():
        for name, conv, bn in conv_bn_pairs(model):
            w, _ = folded_weight_bias(conv, bn)
            w = w.double()
            if conv is first:
                w = (w / fold)[:, list(channel_order)]
            mine.append((name, w.cpu().numpy()))
    ranges, used, exclude, left_float = {}, set(), [], set(record.get("float_convs") or ())
    for node in proto.graph.node:
        if node.op_type != "Conv" or node.input[1] not in consts:
            continue
        w = numpy_helper.to_array(consts[node.input[1]]).astype(np.float64)
        best, err = None, None
        for name, m in mine:
            if m.shape == w.shape and name not in used:
                e = float(np.abs(m - w).max())
                if err is None or e < err:
                    best, err = name, e
        if best is None or err > 1e-4 * max(1e-6, float(np.abs(w).max())):
            raise ExportError("the QAT checkpoint's convs do not match the exported graph's {} (closest differs by "
                              "{}): export the checkpoint QAT wrote, unchanged".format(node.name, err))
        used.add(best)
        if best in left_float:
            exclude.append(node.name)
            continue
        amax = float(record["amax"][best])
        tensor = node.input[0]
        low, high = ranges.get(tensor, (0.0, 0.0))
        ranges[tensor] = (min(low, -amax), max(high, amax))
    return ranges, exclude
