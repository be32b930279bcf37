"""The same build + parity path as test_jetson_path.py, on a real TensorRT (a Jetson or a desktop GPU), for every
layout. Skipped where TensorRT is absent; the logic is covered on the CPU by the TensorRT double."""
import argparse

import pytest

from ...conftest import export_quietly

pytestmark = pytest.mark.tensorrt


def _real_tensorrt():
    try:
        from edgeexport.device.tensorrt.runner import import_tensorrt
        return import_tensorrt()
    except Exception as e:  # absent, or a stub that is not TensorRT: nothing to run here
        pytest.skip("TensorRT is not installed here ({})".format(e))


@pytest.mark.parametrize("layout", ["boxes_scores", "top_class", "efficient_nms"])
def test_real_engine_builds_and_matches_the_fixtures(small_checkpoint, tmp_path, layout):
    _real_tensorrt()
    from edgeexport.device.bundle import Bundle
    from edgeexport.device.check.parity import check_bundle
    from edgeexport.device.tensorrt import build_engine as be
    from edgeexport.device.tensorrt.runner import TensorRTRunner
    bundle = str(tmp_path / "b")
    export_quietly(small_checkpoint, bundle, layout=layout)
    be.main(argparse.Namespace(target=bundle, precision="fp16", batch=None, workspace=512, timing_cache=None,
                               dla_core=None, gpu_id=0, calib_images=None, calib_batches=1, force=True,
                               verbose=False))
    b = Bundle(bundle)
    with TensorRTRunner(b.configured_engine_path(), meta=b.meta) as runner:
        report = check_bundle(b, runner, "fp16")
    assert report.ok, report.table()
