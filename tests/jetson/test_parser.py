"""The C++ parser, compiled and called on real outputs, against the NumPy reference
(edgeexport/device/postprocess.py)."""
import os
import subprocess

import numpy as np
import pytest

from edgeexport.device.meta import BundleMeta
from edgeexport.device.postprocess import parse_boxes_scores, parse_efficient_nms, parse_top_class, to_top_class
from edgeexport.device.runners.onnxruntime import OnnxRuntimeRunner

from .conftest import build_parser_tests


def _sorted(d):
    order = np.lexsort((d.boxes[:, 1], d.boxes[:, 0], d.classes, -np.round(d.scores, 6)))
    return d.boxes[order], d.scores[order], d.classes[order]


def _same(a, b):
    ba, sa, ca = _sorted(a)
    bb, sb, cb = _sorted(b)
    assert len(ca) == len(cb)
    assert np.array_equal(ca, cb)
    np.testing.assert_allclose(sa, sb, rtol=0, atol=1e-7)
    np.testing.assert_allclose(ba, bb, rtol=0, atol=1e-3)


@pytest.fixture(scope="module")
def real_outputs(small_bundle):
    path, _ = small_bundle
    inputs = np.load(os.path.join(path, "parity", "inputs.npy"))
    with OnnxRuntimeRunner(os.path.join(path, "model.onnx")) as r:
        return [r.infer({"input": inputs[i:i + 1]}) for i in range(len(inputs))]


@pytest.mark.parametrize("threshold", [0.05, 0.3, 0.6])
def test_default_layout_matches_numpy_on_real_outputs(parser, real_outputs, threshold):
    total = 0
    for out in real_outputs:
        layers = [("boxes", out["boxes"][0]), ("scores", out["scores"][0])]
        got = parser.parse("boxes_scores", layers, 320, 320, [threshold] * 3, 3)
        ref = parse_boxes_scores(out["boxes"][0], out["scores"][0], 320, 320, [threshold] * 3, 3)
        _same(got, ref)
        total += len(got)
    assert total > 0


def test_top_class_layout_matches_numpy(parser, real_outputs):
    for out in real_outputs:
        top = to_top_class({"boxes": out["boxes"], "scores": out["scores"]})
        layers = [("boxes", top["boxes"][0]), ("top_score", top["top_score"][0]), ("top_class", top["top_class"][0])]
        got = parser.parse("top_class", layers, 320, 320, [0.1, 0.2, 0.3], 3)
        ref = parse_top_class(top["boxes"][0], top["top_score"][0], top["top_class"][0], 320, 320, [0.1, 0.2, 0.3], 3)
        _same(got, ref)


def test_efficient_nms_layout_matches_numpy(parser):
    rng = np.random.default_rng(0)
    m = 50
    boxes = rng.random((m, 4)).astype(np.float32)
    scores = rng.random(m).astype(np.float32)
    classes = rng.integers(-1, 5, m).astype(np.int32)  # some invalid ids
    scores[3] = np.nan
    for count in (0, 17, 80):
        num = np.array([count], np.int32)
        layers = [("num_detections", num), ("detection_boxes", boxes), ("detection_scores", scores),
                  ("detection_classes", classes)]
        got = parser.parse("efficient_nms", layers, 320, 240, [0.3] * 4, 4)
        ref = parse_efficient_nms(num, boxes, scores, classes, 320, 240, [0.3] * 4, 4)
        _same(got, ref)


def test_nan_inf_and_out_of_range_classes(parser):
    boxes = np.array([[0.1, 0.1, 0.4, 0.4], [np.inf, 0, 1, 1], [0.2, 0.2, 0.3, 0.3]], np.float32)
    scores = np.array([[np.nan, 0.9, 0.9], [0.9, 0.9, 0.9], [0.8, np.inf, 0.7]], np.float32)
    got = parser.parse("boxes_scores", [("boxes", boxes), ("scores", scores)], 100, 100, [0.5, 0.5], 2)
    ref = parse_boxes_scores(boxes, scores, 100, 100, [0.5, 0.5], 2)
    _same(got, ref)
    assert sorted(got.classes.tolist()) == [0, 1]


@pytest.mark.parametrize("layers,why", [
    ({"boxes": np.zeros((10, 4), np.float32)}, "missing scores"),
    ({"boxes": np.zeros((10, 5), np.float32), "scores": np.zeros((10, 3), np.float32)}, "boxes last dim"),
    ({"boxes": np.zeros((10, 4), np.float32), "scores": np.zeros((9, 3), np.float32)}, "anchor mismatch"),
    ({"boxes": np.zeros((10, 4), np.float16), "scores": np.zeros((10, 3), np.float32)}, "half data"),
    ({"boxes": np.zeros((10, 4), np.float32), "scores": np.zeros((10, 3, 1), np.float32)}, "rank"),
    ({"boxes": np.zeros((10, 4), np.float32), "scores": np.zeros((10, 0), np.float32)}, "zero classes"),
])
def test_bad_layers_return_false_with_one_log_line(parser, layers, why):
    ok, dets, _ = parser.call("NvDsInferParseEdgeExport", layers, 320, 320, [0.5], 3)
    assert not ok, why


def test_zero_classes_configured_is_rejected(parser):
    ok, _, _ = parser.call("NvDsInferParseEdgeExport", {"boxes": np.zeros((4, 4), np.float32),
                                                          "scores": np.zeros((4, 2), np.float32)}, 320, 320, [0.5], 0)
    assert not ok


def test_cpp_unit_tests_pass(parser_build):
    r = subprocess.run([os.path.join(parser_build, "parser_tests")], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert r.returncode == 0, r.stdout
    assert r.stdout.rstrip().endswith("0 failed"), r.stdout


def test_unit_tests_clean_under_asan_and_ubsan(tmp_path):
    """The same C++ unit tests, the library and all, built with AddressSanitizer + UndefinedBehaviorSanitizer:
    zero findings."""
    build = build_parser_tests(str(tmp_path / "asan"), "SANITIZE=1", "OPT=-O1 -g")
    r = subprocess.run([os.path.join(build, "parser_tests")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=120,
                       env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="halt_on_error=1"))
    assert r.returncode == 0, r.stdout
    assert "runtime error" not in r.stdout and "AddressSanitizer" not in r.stdout
    assert "0 failed" in r.stdout


def test_layout_of_the_ctypes_mirror_matches_bundle_contract(small_bundle, parser):
    meta = BundleMeta.load(os.path.join(small_bundle[0], "model.json"))
    assert meta.output_names == ["boxes", "scores"]  # the names the C++ looks up
