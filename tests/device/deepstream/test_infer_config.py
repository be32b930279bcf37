import os

import pytest

from edgeexport.device import keyfile
from edgeexport.device.deepstream.infer_config import PARSER_FUNCTIONS, infer_config_text
from edgeexport.device.errors import ConfigError
from edgeexport.device.meta import BundleMeta, DetectionSettings, ModelMeta
from edgeexport.device.naming import engine_file_name

from .deepstream_keys import DS_VERSIONS, app_keys_known, nvinfer_keys

pytestmark = pytest.mark.skipif(not keyfile.available(), reason="libglib-2.0 is not installed")


def _meta(**kw):
    model = ModelMeta("ssdlite320_mobilenet_v3_large", ["cat", "dog", "bird"], image_mean=[0.485, 0.456, 0.406],
                      image_std=[0.229, 0.224, 0.225], input_size=[320, 320])
    return BundleMeta(model, num_anchors=3234, **kw)


@pytest.mark.parametrize("color,layout,precision,batch", [("rgb", "boxes_scores", "fp16", 1),
                                                          ("bgr", "top_class", "int8", 4),
                                                          ("rgb", "boxes_scores", "fp32", 2)])
def test_infer_config_values_are_derived_and_keys_documented(color, layout, precision, batch):
    meta = _meta(color_format=color, layout=layout, batch_size=batch, precision=precision,
                 settings=DetectionSettings(0.35, 0.5, 50))
    kf = keyfile.KeyFile(text=infer_config_text(meta))
    assert kf.groups() == ["property", "class-attrs-all"]
    for v in DS_VERSIONS:  # every key is one gst-nvinfer's parser reads, in each version
        assert set(kf.keys("property")) <= nvinfer_keys(v, "property"), v
        assert set(kf.keys("class-attrs-all")) <= nvinfer_keys(v, "class-attrs"), v
    # read back with GLib's typed getters, as nvinfer does
    assert kf.double("property", "net-scale-factor") == 1.0
    assert kf.double_list("property", "offsets") == pytest.approx(meta.offsets, abs=1e-3)
    order = [0, 1, 2] if color == "rgb" else [2, 1, 0]
    assert kf.double_list("property", "offsets") == pytest.approx([255 * meta.model.image_mean[c] for c in order],
                                                                  abs=1e-3)
    assert kf.integer("property", "model-color-format") == (0 if color == "rgb" else 1)
    assert kf.string("property", "model-engine-file") == engine_file_name("model.onnx", batch, precision)
    assert kf.integer("property", "network-mode") == {"fp32": 0, "int8": 1, "fp16": 2}[precision]
    assert kf.integer("property", "batch-size") == batch
    assert kf.integer("property", "num-detected-classes") == 3
    assert kf.string_list("property", "output-blob-names") == meta.output_names
    assert kf.string("property", "parse-bbox-func-name") == PARSER_FUNCTIONS[layout]
    assert kf.string("property", "infer-dims") == "3;320;320"
    assert kf.integer("property", "maintain-aspect-ratio") == 0
    assert kf.integer("property", "scaling-filter") == 1
    assert kf.integer("property", "cluster-mode") == 2
    assert kf.double("class-attrs-all", "pre-cluster-threshold") == pytest.approx(0.35)
    assert kf.double("class-attrs-all", "nms-iou-threshold") == pytest.approx(0.5)
    assert kf.integer("class-attrs-all", "topk") == 50
    assert ("int8-calib-file" in kf.keys("property")) == (precision == "int8")
    for key in ("onnx-file", "labelfile-path", "custom-lib-path", "model-engine-file"):
        assert not os.path.isabs(kf.string("property", key)), key  # relative to the config file


def test_dla_config_names_the_dla_engine_and_tells_nvinfer_to_use_it():
    kf = keyfile.KeyFile(text=infer_config_text(_meta(batch_size=2, dynamic_batch=True), "fp16", 0, 2, dla_core=1))
    assert kf.string("property", "model-engine-file") == "model.onnx_b2_dla1_fp16.engine"
    assert kf.integer("property", "enable-dla") == 1 and kf.integer("property", "use-dla-core") == 1
    for v in DS_VERSIONS:
        assert set(kf.keys("property")) <= nvinfer_keys(v, "property"), v


def test_bundle_configs_read_by_gkeyfile(small_bundle):
    path, result = small_bundle
    meta = BundleMeta.load(os.path.join(path, "model.json"))
    kf = keyfile.KeyFile(os.path.join(path, "infer_config.txt"))
    assert kf.double_list("property", "offsets") == pytest.approx(meta.offsets, abs=1e-3)
    assert os.path.isfile(os.path.join(path, kf.string("property", "onnx-file")))
    assert os.path.isfile(os.path.join(path, kf.string("property", "labelfile-path")))
    for name, sink_type in (("app_config.txt", 3), ("app_config_fps.txt", 1)):
        app = keyfile.KeyFile(os.path.join(path, name))
        assert app_keys_known(app) == []
        assert os.path.isfile(os.path.join(path, app.string("primary-gie", "config-file")))
        assert app.string("source0", "uri") == "file://input.mp4"  # relative: the bundle stays portable
        assert app.integer("source0", "type") == 2 and app.integer("sink0", "type") == sink_type
        assert app.integer("sink0", "sync") == 0 and app.boolean("application", "enable-perf-measurement")
    assert keyfile.KeyFile(os.path.join(path, "app_config.txt")).integer("sink0", "enc-type") == 0


def test_gkeyfile_errors_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot parse"):
        keyfile.KeyFile(text="not a key file\n")
    kf = keyfile.KeyFile(text="[property]\nbatch-size=abc\n")
    with pytest.raises(ConfigError, match="batch-size"):
        kf.integer("property", "batch-size")
    with pytest.raises(ConfigError):
        keyfile.KeyFile(str(tmp_path / "missing.txt"))
