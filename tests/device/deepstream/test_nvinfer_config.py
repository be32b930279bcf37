"""infer_config.txt read as gst-nvinfer reads it (gstnvinfer_property_parser.cpp @6.0.1, the same in 6.3)."""
import pytest

from edgeexport.device.deepstream.nvinfer_config import NvInferConfig
from edgeexport.device.errors import ConfigError

BASE = """[property]
infer-dims=3;320;320
onnx-file=model.onnx
model-engine-file=model.onnx_b1_gpu0_fp16.engine
labelfile-path=labels.txt
custom-lib-path=build/libnvdsparsebbox_edgeexport.so
parse-bbox-func-name=NvDsInferParseEdgeExport
num-detected-classes=3
output-blob-names=boxes;scores
cluster-mode=2
"""


def _config(tmp_path, text):
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    p = tmp_path / "infer_config.txt"
    p.write_text(text)
    return NvInferConfig(str(p))


def test_defaults_are_nvinfers(tmp_path):
    c = _config(tmp_path, BASE)
    assert c.scaling_filter == 6 and not c.maintain_aspect_ratio and c.net_scale_factor == 1.0
    a = c.class_attrs[0]
    assert (float(a.pre), float(a.post), a.iou, a.topk) == (pytest.approx(0.2), 0.0, 0.3, -1)


def test_class_attrs_all_applies_before_per_class_groups_whatever_the_file_order(tmp_path):
    c = _config(tmp_path, BASE + "[class-attrs-1]\ntopk=5\n\n[class-attrs-all]\ntopk=20\npre-cluster-threshold=0.4\n"
                "nms-iou-threshold=0.6\n")
    assert [a.topk for a in c.class_attrs] == [20, 5, 20]
    assert [a.iou for a in c.class_attrs] == [0.6, 0.6, 0.6]
    assert [float(a.pre) for a in c.class_attrs] == pytest.approx([0.4] * 3)


def test_booleans_read_as_glib_reads_them(tmp_path):
    c = _config(tmp_path, BASE + "maintain-aspect-ratio=true\nsymmetric-padding=1\n")
    assert c.maintain_aspect_ratio and c.symmetric_padding
    assert not _config(tmp_path, BASE + "maintain-aspect-ratio=false\n").maintain_aspect_ratio


@pytest.mark.parametrize("extra, message", [
    ("[class-attrs-all]\ntopk=-1\n", "topk must be >= 0"),
    ("[class-attrs-all]\nnms-iou-threshold=1.5\n", r"must lie in \[0, 1\]"),
    ("[class-attrs-all]\npre-cluster-threshold=-0.1\n", "negative"),
    ("[class-attrs-3]\ntopk=5\n", "names class 3 but num-detected-classes=3"),
    ("[class-attrs-x]\ntopk=5\n", "invalid group"),
    ("[class-attrs-all]\ntopk=1.5\n", "topk"),
])
def test_what_nvinfer_refuses_is_refused(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, BASE + extra)


def test_scaling_filter_outside_nvinfers_values_and_unemulated_cluster_modes(tmp_path):
    with pytest.raises(ConfigError, match="scaling-filter=7"):
        _config(tmp_path, BASE.replace("cluster-mode=2", "cluster-mode=2\nscaling-filter=7"))
    with pytest.raises(ConfigError, match="cluster-mode 1 is not emulated"):
        _config(tmp_path, BASE.replace("cluster-mode=2", "cluster-mode=1"))


@pytest.mark.parametrize("function, layout", [("NvDsInferParseEdgeExport", "boxes_scores"),
                                              ("NvDsInferParseEdgeExportTopClass", "top_class"),
                                              ("NvDsInferParseEdgeExportNMS", "efficient_nms")])
def test_the_layout_is_the_one_the_named_parser_reads(tmp_path, function, layout):
    c = _config(tmp_path, BASE.replace("NvDsInferParseEdgeExport", function))
    assert c.layout == layout


def test_a_parser_that_is_not_ours_is_refused_naming_ours(tmp_path):
    c = _config(tmp_path, BASE.replace("NvDsInferParseEdgeExport", "NvDsInferParseCustomSSD"))
    with pytest.raises(ConfigError, match="NvDsInferParseCustomSSD.*available: NvDsInferParseEdgeExport,"):
        c.layout


def test_detections_follow_the_configs_clustering_and_class_attributes(tmp_path):
    """Two overlapping boxes of class 0 and one of class 1: cluster-mode 2 merges the pair, 4 keeps both; a class's
    pre-cluster-threshold drops its box; boxes come back in frame pixels."""
    import numpy as np

    from edgeexport.device.postprocess import FrameScale
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.11, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]], np.float32)
    scores = np.array([[0.9, 0.0, 0.0], [0.8, 0.0, 0.0], [0.0, 0.5, 0.0]], np.float32)
    out = {"boxes": boxes, "scores": scores}
    scale = FrameScale.stretch(320, 320, 640, 320)
    nms = _config(tmp_path, BASE).detections(out, scale)
    assert sorted(nms.classes.tolist()) == [0, 1]
    box0 = nms.boxes[nms.classes.tolist().index(0)]
    assert box0 == pytest.approx([64, 32, 320, 160], abs=0.5)  # x scaled by 2 (640 / 320), y by 1
    assert sorted(_config(tmp_path, BASE.replace("cluster-mode=2", "cluster-mode=4")).detections(
        out, scale).classes.tolist()) == [0, 0, 1]
    strict = _config(tmp_path, BASE + "[class-attrs-1]\npre-cluster-threshold=0.6\n")
    assert strict.detections(out, scale).classes.tolist() == [0]


def test_the_deprecated_threshold_key_is_the_pre_cluster_threshold_and_the_later_key_wins(tmp_path):
    """gstnvinfer_property_parser.cpp:97-108 @6.0.1: 'threshold' sets preClusterThreshold, in file order."""
    c = _config(tmp_path, BASE + "[class-attrs-all]\nthreshold=0.7\n\n[class-attrs-2]\npre-cluster-threshold=0.1\n"
                "threshold=0.45\n")
    assert [float(a.pre) for a in c.class_attrs] == pytest.approx([0.7, 0.7, 0.45])


def test_labels_are_read_as_nvinfer_reads_them(tmp_path):
    """Split at '\\n' only, only empty lines skipped, the first ';' field (nvdsinfer_context_impl.cpp:470-500,
    output_parsing.cpp:291-293 @6.0.1): spaces and a '\\r' are part of a label, as nvinfer would attach them."""
    p = tmp_path / "infer_config.txt"
    p.write_text(BASE)
    (tmp_path / "labels.txt").write_bytes(b"cat \n\n  \ndog;canine\r\n")
    assert NvInferConfig(str(p)).labels == ["cat ", "  ", "dog"]


@pytest.mark.parametrize("version, left", [((6, 2), -40.0), ((6, 3), 0.0)])
def test_from_6_3_nvinfer_clamps_left_and_top_at_zero_keeping_width_and_height(tmp_path, version, left):
    """gstnvinfer_meta_utils.cpp:84-88 @6.3 (absent in 6.2): top and left below 0 become 0, the size stays."""
    import numpy as np
    from edgeexport.device.postprocess import FrameScale
    c = NvInferConfig(str(_config(tmp_path, BASE).path), deepstream_version=version)
    scores = np.zeros((2, 3), np.float32)
    scores[0, 1] = 0.9
    boxes = np.array([[-0.05, 0.5, 0.2, 0.8], [0, 0, 0, 0]], np.float32)  # normalised; 320 px network
    dets = c.detections({"boxes": boxes, "scores": scores}, FrameScale.stretch(320, 320, 800, 600))
    (x1, y1, x2, y2), = dets.boxes
    assert x1 == pytest.approx(left) and x2 - x1 == pytest.approx(0.25 * 800)
