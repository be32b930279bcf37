import json

import pytest

from edgeexport.device.errors import InputFileError
from edgeexport.device.meta import BundleMeta, ModelMeta
from edgeexport.device.naming import engine_file_name, network_mode


def test_model_meta_roundtrip_and_validation():
    m = ModelMeta("ssdlite320_mobilenet_v3_large", ["a", "b"], input_size=(320, 320))
    assert ModelMeta.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    assert m.num_classes == 2
    with pytest.raises(ValueError, match="arch"):
        ModelMeta("resnet50", ["a"])
    with pytest.raises(ValueError, match="unique"):
        ModelMeta("ssdlite320_mobilenet_v3_small", ["a", "a"])
    with pytest.raises(ValueError, match="at least one"):
        ModelMeta("ssdlite320_mobilenet_v3_small", [])
    with pytest.raises(ValueError, match="std"):
        ModelMeta("ssdlite320_mobilenet_v3_small", ["a"], image_std=[0.2, 0.0, 0.2])
    with pytest.raises(ValueError, match="3 numbers"):
        ModelMeta("ssdlite320_mobilenet_v3_small", ["a"], image_mean=[0.5, 0.5])
    with pytest.raises(ValueError, match="newline"):
        ModelMeta("ssdlite320_mobilenet_v3_small", ["a;b"])


def test_bundle_meta_derives_offsets_in_colour_order():
    m = ModelMeta("ssdlite320_mobilenet_v3_small", ["a", "b", "c"], image_mean=[0.1, 0.2, 0.3])
    rgb = BundleMeta(m, num_anchors=3234)
    assert rgb.offsets == pytest.approx([25.5, 51.0, 76.5])
    assert BundleMeta(m, color_format="bgr").offsets == pytest.approx([76.5, 51.0, 25.5])
    assert BundleMeta(m, fold="mean_into_bias").offsets == [0.0, 0.0, 0.0]
    assert rgb.net_scale_factor == 1.0
    assert rgb.output_shapes() == {"boxes": [1, 3234, 4], "scores": [1, 3234, 3]}
    assert BundleMeta(m, dynamic_batch=True).input_shape == [-1, 3, 320, 320]
    assert BundleMeta(m, layout="top_class").output_names == ["boxes", "top_score", "top_class"]


def test_bundle_meta_file_roundtrip_and_errors(tmp_path):
    m = BundleMeta(ModelMeta("ssdlite320_mobilenet_v3_small", ["x"]), num_anchors=10, onnx_sha256="ab")
    p = tmp_path / "model.json"
    m.save(str(p))
    back = BundleMeta.load(str(p))
    assert back.to_dict() == m.to_dict()
    p.write_text("{not json")
    with pytest.raises(InputFileError, match="not valid JSON"):
        BundleMeta.load(str(p))
    p.write_text(json.dumps({"format_version": 1, "deploy": {}}))
    with pytest.raises(InputFileError, match="not an edgeexport bundle"):
        BundleMeta.load(str(p))
    with pytest.raises(InputFileError, match="no bundle at"):
        BundleMeta.load(str(tmp_path / "missing.json"))


@pytest.mark.parametrize("path, value, field", [
    (("deploy", "opset"), "13", "deploy.opset: expected an integer"),
    (("deploy", "batch_size"), True, "deploy.batch_size: expected an integer"),
    (("deploy", "dynamic_batch"), 1, "deploy.dynamic_batch: expected true or false"),
    (("deploy", "layout"), "bogus", "layout must be one of"),
    (("deploy", "offsets"), [float("nan"), 0.0, 0.0], "deploy.offsets: expected a list of finite numbers"),
    (("deploy", "offsets"), [1.0, 2.0, 3.0], "deploy.offsets is [1.0, 2.0, 3.0] but the model's own fields give"),
    (("deploy", "input", "shape"), [1, 3, 300, 300], "deploy.input.shape is [1, 3, 300, 300]"),
    (("deploy", "settings", "topk"), "100", "deploy.settings.topk: expected an integer"),
    (("model", "image_mean"), ["0.5", 0.5, 0.5], "model.image_mean: expected a list of finite numbers"),
    (("model", "labels"), [1, 2], "model.labels: expected a list of strings"),
    (("deploy", "onnx_file"), "../model.onnx", "onnx_file must be a file name inside the bundle"),
    (("files",), {"/etc/passwd": "0" * 64}, "not a path inside the bundle"),
])
def test_model_json_is_read_field_by_field(tmp_path, path, value, field):
    """What is not of its field's kind is "not an edgeexport bundle description", naming the field: a number
    written as a string, a NaN (Python's json reads it), a bool for an integer, an edited derived value."""
    m = BundleMeta(ModelMeta("ssdlite320_mobilenet_v3_small", ["x"]), num_anchors=10, onnx_sha256="ab")
    d = m.to_dict()
    node = d
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    p = tmp_path / "model.json"
    p.write_text(json.dumps(d))
    with pytest.raises(InputFileError, match="not an edgeexport bundle description") as e:
        BundleMeta.load(str(p))
    assert field in str(e.value)


def _v1_dict(meta):
    """model.json as edgeexport 0.1 wrote it: format 1, detection settings under extra."""
    d = meta.to_dict()
    d["format_version"] = 1
    for k in ("kind", "written_by"):
        d.pop(k)
    d["extra"] = {"settings": d["deploy"].pop("settings")}
    d["deploy"]["max_detections"] = meta.settings.topk
    return d


def test_format_2_reads_format_1_and_refuses_a_newer_one_by_name(tmp_path):
    from edgeexport.device.errors import BundleFormatError
    from edgeexport.device.meta import BUNDLE_FORMAT_VERSION, DetectionSettings, is_bundle_folder
    meta = BundleMeta(ModelMeta("ssdlite320_mobilenet_v3_small", ["a", "b"]), num_anchors=10,
                      settings=DetectionSettings(0.3, 0.5, 20), written_by="0.2.0")
    assert meta.to_dict()["format_version"] == BUNDLE_FORMAT_VERSION == 2
    old = BundleMeta.from_dict(_v1_dict(meta))
    assert old.settings == meta.settings and old.model == meta.model and old.layout == meta.layout
    future = dict(meta.to_dict(), format_version=3, written_by="0.9.1")
    with pytest.raises(BundleFormatError, match=r"format 3, written by edgeexport 0\.9\.1.*edgeexport>=0\.9\.1"):
        BundleMeta.from_dict(future)
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "model.json").write_text(json.dumps(_v1_dict(meta)))
    (tmp_path / "v3").mkdir()
    (tmp_path / "v3" / "model.json").write_text(json.dumps(future))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model.json").write_text(json.dumps({"name": "someone else's model.json"}))
    assert is_bundle_folder(str(tmp_path / "v1")) and is_bundle_folder(str(tmp_path / "v3"))
    assert not is_bundle_folder(str(tmp_path / "other")) and not is_bundle_folder(str(tmp_path))


def test_detection_settings_refuse_what_nvinfer_refuses():
    from edgeexport.device.meta import DetectionSettings
    for bad in ({"topk": 0}, {"topk": -1}, {"pre_cluster_threshold": 1.5}, {"nms_iou_threshold": -0.1}):
        with pytest.raises(ValueError):
            DetectionSettings(**bad)


def test_engine_file_name_is_nvinfers():
    assert engine_file_name("model.onnx", 1, "fp16") == "model.onnx_b1_gpu0_fp16.engine"
    assert engine_file_name("model.onnx", 4, "int8", gpu_id=1) == "model.onnx_b4_gpu1_int8.engine"
    assert engine_file_name("model.onnx", 2, "fp32", dla_core=0) == "model.onnx_b2_dla0_fp32.engine"
    assert [network_mode(p) for p in ("fp32", "int8", "fp16")] == [0, 1, 2]
    with pytest.raises(ValueError):
        engine_file_name("model.onnx", 0, "fp16")
    with pytest.raises(ValueError):
        network_mode("bf16")
