"""export --precision int8 --calib-data: the Q/DQ twin as TensorRT's parser requires it (the rules of
edgeexport/export/quantize.py's docstring), its calibration cache, its INT8 row, its nvinfer config."""
import json
import os
import types

import numpy as np
import pytest

from edgeexport.data.validation import open_dataset
from edgeexport.device import keyfile
from edgeexport.device.bundle import Bundle
from edgeexport.device.deepstream.infer_config import EXPLICIT_INT8_CALIB_FILE, infer_config_text
from edgeexport.device.errors import UsageError
from edgeexport.export.quantize import QDQ_ONNX, QDQ_RECORD, Int8Settings

from ..conftest import export_quietly


def _calib(n=8, **kw):
    return Int8Settings(open_dataset("synthetic", synthetic_size=n, seed=3, num_classes=3), max_images=n, **kw)


@pytest.fixture(scope="module")
def int8_bundle(small_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "bundle"
    export_quietly(small_checkpoint, out, precision="int8", int8=_calib(8, method="minmax"))
    return str(out)


def _qdq(bundle):
    import onnx
    return onnx.load(os.path.join(bundle, QDQ_ONNX))


def test_the_qdq_twin_passes_onnx_and_tensorrt_rules(int8_bundle):
    import onnx
    from onnx import numpy_helper
    proto = _qdq(int8_bundle)
    onnx.checker.check_model(proto)
    consts = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    qdq = [n for n in proto.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq
    producers = {o: n for n in proto.graph.node for o in n.output}
    per_channel = 0
    for n in qdq:
        assert len(n.input) == 3  # TensorRT 8.2 needs the zero point given
        scale, zero = consts[n.input[1]], consts[n.input[2]]
        assert zero.dtype == np.int8 and not zero.any() and zero.size == scale.size and (scale > 0).all()
        if scale.size > 1:  # per channel: only a conv's weights, along its output channels
            per_channel += 1
            src = n.input[0] if n.input[0] in consts else producers[n.input[0]].input[0]
            assert src in consts and consts[src].shape[0] == scale.size
            assert [a.i for a in n.attribute if a.name == "axis"] in ([], [0])
    assert per_channel > 0
    # every conv reads two dequantized inputs but those the sensitivity check keeps float (which read float ones),
    # and nothing else reads one: a residual Add keeps the float tensor (as QAT trains it), the decode and softmax
    # tail stays float
    kept_float = set(Bundle(int8_bundle).meta.int8["kept_float"])
    dq_out = {n.output[0] for n in qdq if n.op_type == "DequantizeLinear"}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert len(kept_float) < len(convs) / 4
    for n in convs:
        quantized = n.input[0] in dq_out and n.input[1] in dq_out
        assert quantized != (n.name in kept_float) and (quantized or not set(n.input) & dq_out), n.name
    for n in proto.graph.node:
        if n.op_type == "Conv":
            continue
        elif n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            assert not set(n.input) & dq_out, "{} ({}) reads a dequantized tensor".format(n.name, n.op_type)


def test_the_bundle_records_the_twin_and_nvinfer_builds_int8_from_it(int8_bundle):
    b = Bundle(int8_bundle)
    meta = b.meta
    assert meta.onnx_int8_file == QDQ_ONNX and meta.graph_sha256(QDQ_ONNX) and meta.int8["method"] == "minmax"
    assert meta.int8["images"] == 8 and meta.int8["summary"]["convs_quantized"] > 0
    assert QDQ_ONNX in meta.files and QDQ_RECORD in meta.files and EXPLICIT_INT8_CALIB_FILE in meta.files
    record = json.load(open(os.path.join(int8_bundle, QDQ_RECORD)))
    assert record["identity"]["onnx_sha256"] and len(record["ranges"]) > 10
    cfg = keyfile.KeyFile(os.path.join(int8_bundle, "infer_config.txt")) if keyfile.available() else None
    text = open(os.path.join(int8_bundle, "infer_config.txt")).read()
    assert "onnx-file=model_int8.onnx" in text and "network-mode=1" in text
    assert "model-engine-file=model_int8.onnx_b1_gpu0_int8.engine" in text
    # nvinfer sets kINT8 only with an int8-calib-file that exists (nvdsinfer_context_impl.cpp:1702-1706 @6.0.1)
    assert "int8-calib-file={}".format(EXPLICIT_INT8_CALIB_FILE) in text
    assert os.path.isfile(os.path.join(int8_bundle, EXPLICIT_INT8_CALIB_FILE))
    if cfg is not None:
        assert cfg.to_dict()["property"]["int8-calib-file"] == EXPLICIT_INT8_CALIB_FILE
    # without the twin an int8 config keeps TensorRT's calibration cache
    meta.onnx_int8_file = ""
    assert "int8-calib-file=calibration.cache" in infer_config_text(meta, "int8")


def test_the_int8_row_runs_the_twin_on_nvinfers_path(int8_bundle, tmp_path):
    from edgeexport.device.check.evaluate import evaluate_bundle
    rows = evaluate_bundle(int8_bundle, ("nvinfer", "int8"), dataset="synthetic", max_images=6).rows
    by = {r["backend"]: r for r in rows}
    assert set(by) == {"nvinfer", "int8"} and by["int8"]["images"] == 6
    assert 0.0 <= by["int8"]["map"] <= 1.0


def test_the_int8_row_needs_the_twin(small_bundle):
    from edgeexport.device.check.eval_rows import make_row
    with pytest.raises(UsageError, match="--calib-data"):
        make_row("int8", Bundle(small_bundle[0]))


def test_the_calibration_cache_is_reused_only_for_the_same_graph_and_images(small_checkpoint, tmp_path):
    cache = str(tmp_path / "ranges.json")
    said = []
    from edgeexport.export.pipeline import export_bundle
    export_bundle(small_checkpoint, str(tmp_path / "a"), precision="int8", int8=_calib(4, cache=cache),
                  echo=said.append)
    assert os.path.isfile(cache) and not any("reused" in s for s in said)
    said[:] = []
    export_bundle(small_checkpoint, str(tmp_path / "b"), precision="int8", int8=_calib(4, cache=cache),
                  echo=said.append)
    assert any("reused" in s for s in said)
    assert open(tmp_path / "a" / QDQ_ONNX, "rb").read() == open(tmp_path / "b" / QDQ_ONNX, "rb").read()
    said[:] = []
    export_bundle(small_checkpoint, str(tmp_path / "c"), precision="int8", int8=_calib(5, cache=cache),
                  echo=said.append)
    assert any("recalibrating" in s for s in said)


def test_a_cache_of_another_quantile_is_another_calibration(monkeypatch):
    from edgeexport.export.quantize import cache_identity
    from edgeexport.model import qat

    class Images(object):
        digest = "d"

        def __len__(self):
            return 4
    meta = types.SimpleNamespace(input_shape=(3, 320, 320))
    before = cache_identity("sha", meta, Images(), "image-max")
    assert before["parameter"] == qat.RANGE_QUANTILE
    monkeypatch.setattr(qat, "RANGE_QUANTILE", 50.0)
    assert cache_identity("sha", meta, Images(), "image-max") != before
    assert cache_identity("sha", meta, Images(), "percentile")["parameter"] == 99.999


def test_calibration_needs_precision_int8(small_checkpoint, tmp_path):
    with pytest.raises(UsageError, match="precision int8"):
        export_quietly(small_checkpoint, tmp_path / "x", precision="fp16", int8=_calib(2))
    assert not os.path.exists(tmp_path / "x")


def test_the_cli_refuses_calibration_flags_without_calib_data(small_checkpoint, tmp_path, capsys):
    from edgeexport.export.cli import cli
    with pytest.raises(SystemExit) as e:
        cli(["--model-path", small_checkpoint, "--output-dir", str(tmp_path / "y"), "--calib-cache", "c.json"])
    assert e.value.code != 0 and "--calib-cache needs --calib-data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli(["--model-path", small_checkpoint, "--output-dir", str(tmp_path / "y"), "--calib-data", "synthetic:4"])
    assert e.value.code != 0 and "--precision int8" in capsys.readouterr().err


def test_a_conv_whose_channels_differ_by_orders_of_magnitude_stays_float():
    import torch
    from edgeexport.export.quantize import float_convs
    from edgeexport.model.qat import MAX_LAYER_ERROR, int8_conv_error
    torch.manual_seed(0)
    w = torch.randn(8, 4, 3, 3)
    attrs = {"pads": [1, 1, 1, 1]}
    x = torch.randn(2, 4, 16, 16)
    balanced = int8_conv_error(x, w, None, attrs, float(x.abs().max()))
    x[:, 0] *= 1000.0  # one channel dwarfs the rest: a per-tensor INT8 grid rounds the others to 0
    w[:, 0] = 0.0  # and carries nothing this conv uses
    wrecked = int8_conv_error(x, w, None, attrs, float(x.abs().max()))
    assert balanced < 0.05 < MAX_LAYER_ERROR < wrecked
    said = []
    assert float_convs({"a": balanced, "b": wrecked}, MAX_LAYER_ERROR, echo=said.append) == ["b"]
    assert "1 of 2 convs" in said[0]


def test_a_rare_image_whose_activations_explode_does_not_set_the_range():
    from edgeexport.model.qat import image_max_range
    maxima = [8.0 + 0.1 * i for i in range(30)] + [3145.0]  # one image in 31, as SSDLite-Large's last stage
    assert 8.0 < image_max_range(maxima) < 11.0
    assert image_max_range([5.0] * 4) == 5.0


def test_image_max_ranges_are_the_upper_quartile_of_each_images_largest_value(small_checkpoint, tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import helper
    from edgeexport.device.meta import BundleMeta
    from edgeexport.export.quantize import CalibrationImages, calibrate
    export_quietly(small_checkpoint, tmp_path / "b")
    meta = BundleMeta.load(str(tmp_path / "b" / "model.json"))
    data = open(tmp_path / "b" / "model.onnx", "rb").read()
    images = CalibrationImages(_calib(5).dataset, meta, 5, 0)
    ranges = calibrate(data, images, echo=lambda *a: None)  # the default method
    proto = onnx.load_from_string(data)
    conv = [n for n in proto.graph.node if n.op_type == "Conv"][3]
    del proto.graph.output[:]
    proto.graph.output.extend([helper.make_tensor_value_info(conv.input[0], onnx.TensorProto.FLOAT, None)])
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    maxima = sorted(float(np.abs(session.run(None, {meta.input_name: x})[0]).max())
                    for x in images.inputs(progress=False))
    # numpy's linear quantile of 5 values at 75 %: the 4th smallest
    assert ranges[conv.input[0]] == pytest.approx((-maxima[3], maxima[3]), rel=1e-6)
    assert maxima[3] < maxima[4]


def test_the_conv_error_is_the_median_images():
    import torch
    from edgeexport.model.qat import int8_conv_error
    torch.manual_seed(0)
    w, attrs = torch.randn(8, 4, 3, 3), {"pads": [1, 1, 1, 1]}
    x = torch.randn(5, 4, 16, 16)
    typical = int8_conv_error(x, w, None, attrs, 4.0)
    x[0] *= 100.0  # one image far outside the range: clipped, as the range means it to be
    assert int8_conv_error(x, w, None, attrs, 4.0) == pytest.approx(typical, rel=0.5)
    assert int8_conv_error(x[:1], w, None, attrs, 4.0) > 0.9
