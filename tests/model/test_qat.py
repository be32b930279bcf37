"""QAT fake-quantizes what export's Q/DQ graph quantizes, the same way (edgeexport/model/qat.py): the graph a QAT
checkpoint exports to carries its ranges, and conv by conv it computes what the QAT model computes."""
import numpy as np
import pytest
import torch

from edgeexport.device.errors import UsageError
from edgeexport.model.checkpoint import load_model, save_checkpoint
from edgeexport.model.qat import QatDetector, conv_bn_pairs

from ..conftest import export_quietly, make_model


@pytest.fixture(scope="module")
def qat_checkpoint(tmp_path_factory):
    model, meta = make_model()
    qat = QatDetector(model, meta)
    torch.manual_seed(1)
    qat.calibrate([[torch.rand(3, 320, 320) for _ in range(2)] for _ in range(2)], echo=lambda *a: None)
    path = str(tmp_path_factory.mktemp("qat") / "qat.pth")
    save_checkpoint(path, model, meta, qat=qat.record())
    return path


@pytest.fixture(scope="module")
def qat_bundle(qat_checkpoint, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("qatb") / "bundle")
    export_quietly(qat_checkpoint, out, precision="int8")
    return out


def _graph_scales(path):
    import onnx
    from onnx import numpy_helper
    proto = onnx.load(path)
    consts = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    producer = {o: n for n in proto.graph.node for o in n.output}
    return proto, consts, producer


def test_the_graph_takes_each_convs_qat_range(qat_checkpoint, qat_bundle):
    import os
    net, meta, raw = load_model(qat_checkpoint)
    amax = raw["qat"]["amax"]
    proto, consts, producer = _graph_scales(os.path.join(qat_bundle, "model_int8.onnx"))
    quantized = [n for n in proto.graph.node if n.op_type == "Conv" and n.input[0] in producer and
                 producer[n.input[0]].op_type == "DequantizeLinear"]
    scales = sorted(float(consts[producer[n.input[0]].input[1]]) for n in quantized)
    float_convs = set(raw["qat"]["float_convs"])
    want = sorted(np.float32(np.float64(a) / 127) for k, a in amax.items() if k not in float_convs)
    # one scale per conv input: QAT's amax / 127 (convs that read one tensor share one range)
    assert len(scales) == len(want) and np.allclose(scales, want, rtol=1e-6, atol=0)


def test_conv_by_conv_the_graph_computes_what_qat_computes(qat_checkpoint, qat_bundle):
    import os
    import onnx
    import onnxruntime as ort
    net, meta, raw = load_model(qat_checkpoint)
    QatDetector(net, meta, amax=raw["qat"]["amax"], float_convs=raw["qat"]["float_convs"])
    pairs = conv_bn_pairs(net)
    got = {}
    for name, conv, _ in pairs:  # copied: the activations after a conv run in place
        conv.register_forward_hook(lambda m, i, o, name=name: got.__setitem__(name, o.detach().numpy().copy()))
    torch.manual_seed(0)
    x01 = torch.rand(1, 3, 320, 320)
    mean = torch.tensor(meta.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(meta.image_std).view(1, 3, 1, 1)
    with torch.no_grad():
        net.backbone((x01 - mean) / std)
    proto = onnx.load(os.path.join(qat_bundle, "model_int8.onnx"))
    convs = [n for n in proto.graph.node if n.op_type == "Conv"][:12]  # the backbone's first, in both orders
    del proto.graph.output[:]
    proto.graph.output.extend([onnx.helper.make_tensor_value_info(n.output[0], onnx.TensorProto.FLOAT, None)
                               for n in convs])
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # Q/DQ as written: no kernels fused
    outs = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"]).run(
        None, {"input": ((x01 - mean) * 255).numpy()})  # the graph's input: pixels minus 255*mean
    for (name, _, _), onnx_out in zip(pairs, outs):
        diff = np.abs(got[name] - onnx_out)
        # equal up to float rounding, except where it carries a value across a rounding boundary of the INT8 grid:
        # then a few elements move by one step
        assert (diff > 1e-4 * max(1.0, float(np.abs(onnx_out).max()))).mean() < 0.01, name


def test_a_qat_checkpoint_takes_no_calibration_data(qat_checkpoint, tmp_path):
    from edgeexport.data.validation import open_dataset
    from edgeexport.export.quantize import Int8Settings
    calib = Int8Settings(open_dataset("synthetic", synthetic_size=2, seed=3, num_classes=3), max_images=2)
    with pytest.raises(UsageError, match="carries its INT8 ranges"):
        export_quietly(qat_checkpoint, tmp_path / "b", precision="int8", int8=calib)
