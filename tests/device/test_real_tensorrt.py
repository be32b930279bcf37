"""The same build + parity path as test_build_engine.py, on a real TensorRT (a Jetson or a desktop GPU).
Skipped where TensorRT or a GPU is absent; the logic is covered on the CPU by the tensorrt double."""
import argparse
import os
import shutil

import pytest

pytestmark = pytest.mark.tensorrt
trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed here")


def test_real_engine_builds_and_matches_the_fixtures(small_bundle, tmp_path):
    from edgeexport.device import build_engine as be
    from edgeexport.device.compare import compare_outputs
    from edgeexport.device.meta import BundleMeta
    from edgeexport.device.parity import Fixtures, run_backend
    from edgeexport.device.runners.tensorrt import TensorRTRunner
    bundle = str(tmp_path / "b")
    shutil.copytree(small_bundle[0], bundle)
    be.main(argparse.Namespace(target=bundle, precision="fp16", batch=None, workspace=512, timing_cache=None,
                               dla_core=None, gpu_id=0, calib_images=None, calib_batches=1, force=True,
                               verbose=False))
    engine = os.path.join(bundle, "model.onnx_b1_gpu0_fp16.engine")
    fx = Fixtures.load(bundle)
    with TensorRTRunner(engine) as runner:
        got = run_backend(runner, fx.inputs, 1)
    settings = BundleMeta.load(bundle).settings
    assert compare_outputs(fx.expected, got, 320, 320, "fp16", settings, fx.threshold).ok
