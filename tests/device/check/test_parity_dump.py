"""parity --dump: DeepStream's own outputs on the frames it saw (what `deepstream_app --dump` saves) against ONNX
Runtime on the same frames, prepared as infer_config.txt says. Dumps made here stand in for the board's: one made
the way nvinfer is configured passes; one whose colour order differs (what a wrong model-color-format does on the
board) fails."""
import os

import numpy as np
import pytest

from edgeexport.device import keyfile
from edgeexport.device.bundle import GRAPH_BEFORE_NMS
from edgeexport.device.deepstream.nvinfer_config import NvInferConfig
from edgeexport.device.preprocess import network_input_from_8bit, scale_frame
from edgeexport.device.runners.onnxruntime import OnnxRuntimeRunner

from ...conftest import export_quietly, run_cli

pytestmark = pytest.mark.skipif(not keyfile.available(), reason="libglib-2.0 is not installed")


def _frames(n=4, w=200, h=150):
    rng = np.random.default_rng(3)
    frames = []
    for i in range(n):
        f = np.full((h, w, 3), 60 + 30 * i, np.uint8)
        x, y = rng.integers(10, 80, 2)
        f[y:y + 60, x:x + 80] = rng.integers(0, 256, 3)
        frames.append(f)
    return frames


def make_dump(bundle, folder, swap_colours=False, plugin=False):
    """What the pyds app's --dump writes, computed on this host: RGBA frames and the graph's outputs for them."""
    from edgeexport.device.meta import BundleMeta
    from edgeexport.device.postprocess import efficient_nms_outputs
    os.makedirs(folder)
    cfg = NvInferConfig(os.path.join(bundle, "infer_config.txt"))
    meta = BundleMeta.load(bundle)
    graph = os.path.join(bundle, GRAPH_BEFORE_NMS if plugin else "model.onnx")
    with OnnxRuntimeRunner(graph) as runner:
        for i, frame in enumerate(_frames()):
            small, _ = scale_frame(frame[..., ::-1] if swap_colours else frame, cfg.net_w, cfg.net_h,
                                   cfg.scaling_filter)
            out = {k: v[0] for k, v in runner.infer({"input": network_input_from_8bit(
                small, cfg.offsets, cfg.net_scale_factor, cfg.color_format)}).items()}
            if plugin:
                s = meta.settings
                out = efficient_nms_outputs(out["boxes"], out["scores"], s.pre_cluster_threshold,
                                            s.nms_iou_threshold, meta.max_output_boxes)
            rgba = np.concatenate([frame, np.full(frame.shape[:2] + (1,), 255, np.uint8)], 2)
            stem = os.path.join(folder, "source0_frame{:06d}".format(i))
            np.save(stem + "_rgba.npy", rgba)
            np.savez(stem + "_outputs.npz", **out)


def test_a_dump_as_nvinfer_is_configured_passes_and_a_colour_swap_fails(small_bundle, tmp_path):
    bundle = small_bundle[0]
    good, bad = str(tmp_path / "good"), str(tmp_path / "bad")
    make_dump(bundle, good)
    make_dump(bundle, bad, swap_colours=True)
    r = run_cli(["-m", "edgeexport.parity", bundle, "--dump", good, "--precision", "fp32",
                 "--pre-cluster-threshold", "0.2"])
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
    assert "ONNX Runtime on the same frames" in r.stdout
    r = run_cli(["-m", "edgeexport.parity", bundle, "--dump", bad, "--precision", "fp32",
                 "--pre-cluster-threshold", "0.2"])
    assert r.returncode == 1 and "FAIL" in r.stdout and "colour conversion" in r.stderr


def test_efficient_nms_dumps_compare_through_the_plugin_reference(small_checkpoint, tmp_path):
    bundle = str(tmp_path / "nms")
    from edgeexport.device.meta import DetectionSettings
    export_quietly(small_checkpoint, bundle, layout="efficient_nms", settings=DetectionSettings(0.2, 0.55, 20))
    dump = str(tmp_path / "dump")
    make_dump(bundle, dump, plugin=True)
    r = run_cli(["-m", "edgeexport.parity", bundle, "--dump", dump, "--precision", "fp32"])
    assert r.returncode == 0 and "num_detections" in r.stdout and "PASS" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("case, message", [("empty", "holds no *_rgba.npy"), ("missing", "cannot read --dump"),
                                           ("no_outputs", "not a readable dump frame")])
def test_bad_dumps_are_one_line(small_bundle, tmp_path, case, message):
    folder = tmp_path / "d"
    if case != "missing":
        folder.mkdir()
    if case == "no_outputs":
        np.save(str(folder / "source0_frame000000_rgba.npy"), np.zeros((10, 10, 4), np.uint8))
    r = run_cli(["-m", "edgeexport.parity", small_bundle[0], "--dump", str(folder)])
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
