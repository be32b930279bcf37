"""The same build + parity path as test_build_engine.py, on a real TensorRT (a Jetson or a desktop GPU).
Skipped where TensorRT or a GPU is absent; the logic is covered on the CPU by the tensorrt double."""
import argparse
import os
import shutil

import pytest

pytestmark = pytest.mark.tensorrt
trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed here")


def test_real_engine_builds_and_matches_the_fixtures(small_bundle, tmp_path):
    from edgeexport import build_engine as be
    from edgeexport.compare import compare_outputs
    from edgeexport.parity import load_fixtures, run_backend
    from edgeexport.runners.tensorrt_runner import TensorRTRunner
    bundle = str(tmp_path / "b")
    shutil.copytree(small_bundle[0], bundle)
    be.main(argparse.Namespace(target=bundle, precision="fp16", batch=None, workspace=512, timing_cache=None,
                               dla_core=None, gpu_id=0, calib_images=None, calib_batches=1, force=True,
                               verbose=False))
    engine = os.path.join(bundle, "model.onnx_b1_gpu0_fp16.engine")
    inputs, expected = load_fixtures(bundle)
    with TensorRTRunner(engine) as runner:
        got = run_backend(runner, inputs, 1)
    assert compare_outputs(expected, got, 320, 320, "fp16").ok
