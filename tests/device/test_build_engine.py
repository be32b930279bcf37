"""build_engine and the TensorRT runner against the tensorrt double, in both API generations."""
import argparse
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from edgeexport.device import build_engine as be
from edgeexport.device import keyfile
from edgeexport.device.compare import compare_outputs
from edgeexport.device.errors import EngineBuildError, InputFileError, UnsupportedPrecisionError, UsageError
from edgeexport.device.meta import BundleMeta
from edgeexport.device.parity import Fixtures, run_backend
from edgeexport.device.runners.tensorrt import TensorRTRunner

from ..conftest import export_quietly
from .trt_double import FakeCuda, make_tensorrt

GENERATIONS = ["8.2", "10"]


def _args(target, **kw):
    d = dict(target=target, precision=None, batch=None, workspace=256, timing_cache=None, dla_core=None, gpu_id=0,
             calib_images=None, calib_batches=32, force=False, verbose=False)
    d.update(kw)
    return argparse.Namespace(**d)


@pytest.fixture
def bundle(small_bundle, tmp_path):
    path = str(tmp_path / "bundle")
    shutil.copytree(small_bundle[0], path)
    return path


@pytest.fixture(scope="module")
def dynamic_bundle(small_checkpoint, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("dyn") / "bundle")
    export_quietly(small_checkpoint, out, dynamic_batch=True, batch_size=4)
    return out


@pytest.mark.parametrize("gen", GENERATIONS)
def test_fp16_build_flags_workspace_name_and_config(bundle, gen, capsys):
    trt = make_tensorrt(gen)
    assert be.main(_args(bundle, workspace=512), trt=trt) == 0
    engine = os.path.join(bundle, "model.onnx_b1_gpu0_fp16.engine")
    assert os.path.isfile(engine)
    plan = trt.Runtime(None).deserialize_cuda_engine(open(engine, "rb").read()).plan
    assert ("create_network", 1 << 0) in trt.calls  # explicit batch
    assert plan["flags"] == ["FP16"] and plan["workspace"] == 512 << 20 and plan["profiles"] == []
    out = capsys.readouterr().out
    assert "next: python3 -m edgeexport.parity" in out
    if keyfile.available():
        kf = keyfile.KeyFile(os.path.join(bundle, "infer_config.txt"))
        assert kf.string("property", "model-engine-file") == "model.onnx_b1_gpu0_fp16.engine"
        assert kf.integer("property", "network-mode") == 2
    # a second run finds the engine and does not rebuild
    calls = len(trt.calls)
    assert be.main(_args(bundle), trt=trt) == 0 and len(trt.calls) == calls


@pytest.mark.parametrize("gen", GENERATIONS)
def test_fp32_build_rewrites_the_config_for_the_new_engine(bundle, gen):
    trt = make_tensorrt(gen)
    be.main(_args(bundle, precision="fp32"), trt=trt)
    assert os.path.isfile(os.path.join(bundle, "model.onnx_b1_gpu0_fp32.engine"))
    text = open(os.path.join(bundle, "infer_config.txt")).read()
    assert "model-engine-file=model.onnx_b1_gpu0_fp32.engine" in text and "network-mode=0" in text


@pytest.mark.parametrize("gen", GENERATIONS)
def test_dynamic_batch_profile(dynamic_bundle, gen, tmp_path):
    path = str(tmp_path / "b")
    shutil.copytree(dynamic_bundle, path)
    trt = make_tensorrt(gen)
    be.main(_args(path, batch=4), trt=trt)
    assert ("profile.set_shape", "input", (1, 3, 320, 320), (4, 3, 320, 320), (4, 3, 320, 320)) in trt.calls
    assert os.path.isfile(os.path.join(path, "model.onnx_b4_gpu0_fp16.engine"))


def test_static_batch_mismatch_is_refused(bundle):
    with pytest.raises(UsageError, match="static batch of 1"):
        be.main(_args(bundle, batch=4), trt=make_tensorrt("10"))


@pytest.mark.parametrize("gen", GENERATIONS)
def test_int8_calibrator_gets_nvinfer_prepared_batches(bundle, gen, tmp_path):
    from edgeexport.device.preprocess import nvinfer_preprocess
    images = tmp_path / "calib"
    images.mkdir()
    rng = np.random.default_rng(0)
    arrays = []
    for i in range(5):
        a = rng.integers(0, 256, (240, 300, 3), dtype=np.uint8)
        Image.fromarray(a).save(str(images / "{}.png".format(i)))
        arrays.append(a)
    cuda = FakeCuda()
    trt = make_tensorrt(gen, cuda=cuda)
    be.main(_args(bundle, precision="int8", calib_images=str(images)), trt=trt, cuda=cuda)
    assert ("calibrated", 5, False) in trt.calls  # 5 batches of 1, no cache before
    assert open(os.path.join(bundle, "calibration.cache"), "rb").read().startswith(b"TRT-")
    plan = trt.Runtime(None).deserialize_cuda_engine(
        open(os.path.join(bundle, "model.onnx_b1_gpu0_int8.engine"), "rb").read()).plan
    assert plan["flags"] == ["FP16", "INT8"]
    text = open(os.path.join(bundle, "infer_config.txt")).read()
    assert "int8-calib-file=calibration.cache" in text and "network-mode=1" in text
    # what the calibrator handed over for the last image is nvinfer's preprocessing of it
    meta = BundleMeta.load(os.path.join(bundle, "model.json"))
    last_ptr = max(cuda.memory)
    fed = cuda.memory[last_ptr][:3 * 320 * 320 * 4].view(np.float32).reshape(1, 3, 320, 320)
    np.testing.assert_allclose(fed, nvinfer_preprocess(arrays[-1], 320, 320, meta.offsets), atol=1e-4)


def test_int8_refused_on_a_gpu_without_it_and_needs_images(bundle):
    with pytest.raises(UnsupportedPrecisionError, match="Nano has no INT8"):
        be.main(_args(bundle, precision="int8", calib_images=bundle), trt=make_tensorrt("8.2", fast_int8=False),
                cuda=FakeCuda())
    with pytest.raises(InputFileError, match="--calib-images"):
        be.main(_args(bundle, precision="int8"), trt=make_tensorrt("8.2"), cuda=FakeCuda())


def test_fp16_refused_without_fast_fp16(bundle):
    with pytest.raises(UnsupportedPrecisionError, match="no fast FP16.*--fp32"):
        be.main(_args(bundle), trt=make_tensorrt("8.2", fast_fp16=False))


def test_every_parser_error_is_reported(bundle):
    trt = make_tensorrt("8.2", parser_errors=["Unsupported ONNX op HardSwish", "Assertion failed: axes"])
    with pytest.raises(EngineBuildError) as e:
        be.main(_args(bundle), trt=trt)
    assert "2 error(s)" in str(e.value) and "HardSwish" in str(e.value) and "axes" in str(e.value)
    assert not [f for f in os.listdir(bundle) if f.endswith(".engine")]


@pytest.mark.parametrize("gen", GENERATIONS)
def test_engine_io_checked_against_model_json(bundle, gen):
    with pytest.raises(EngineBuildError, match="missing output 'scores'"):
        be.main(_args(bundle), trt=make_tensorrt(gen, rename_output=("scores", "logits")))
    assert not [f for f in os.listdir(bundle) if f.endswith(".engine")]


def test_dla_core_configured_or_refused(bundle):
    trt = make_tensorrt("10", dla_cores=2)
    be.main(_args(bundle, dla_core=1), trt=trt)
    plan = trt.Runtime(None).deserialize_cuda_engine(
        open(os.path.join(bundle, "model.onnx_b1_dla1_fp16.engine"), "rb").read()).plan
    assert plan["dla_core"] == 1 and "GPU_FALLBACK" in plan["flags"]
    with pytest.raises(UnsupportedPrecisionError, match="DLA"):
        be.main(_args(bundle, dla_core=0, force=True), trt=make_tensorrt("8.2", dla_cores=0))


def test_timing_cache_is_read_and_written(bundle, tmp_path):
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    be.main(_args(bundle, timing_cache=str(cache)), trt=make_tensorrt("10"))
    assert cache.read_bytes() == b"old+"


@pytest.mark.parametrize("gen", GENERATIONS)
def test_tensorrt_runner_passes_parity_against_fixtures(bundle, gen):
    cuda = FakeCuda()
    trt = make_tensorrt(gen, cuda=cuda)
    be.main(_args(bundle, precision="fp32"), trt=trt)
    fx = Fixtures.load(bundle)
    inputs, expected = fx.inputs, fx.expected
    with TensorRTRunner(os.path.join(bundle, "model.onnx_b1_gpu0_fp32.engine"), trt=trt, cuda=cuda) as runner:
        got = run_backend(runner, inputs, 1)
    report = compare_outputs(expected, got, 320, 320, "fp32", BundleMeta.load(bundle).settings, fx.threshold)
    assert report.ok and report.matched > 0
    want = "execute_async_v3" if gen == "10" else "execute_async_v2"
    assert any(c[0] == want for c in trt.calls)
    assert any(c[0] == ("set_input_shape" if gen == "10" else "set_binding_shape") for c in trt.calls)


def test_runner_refuses_an_engine_of_another_tensorrt(bundle):
    bad = os.path.join(bundle, "bad.engine")
    open(bad, "wb").write(b"\x00\x01not a plan")
    with pytest.raises(InputFileError, match="another TensorRT version"):
        TensorRTRunner(bad, trt=make_tensorrt("10"), cuda=FakeCuda()).activate()


def test_missing_target_is_one_clear_error(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        be.main(_args(str(tmp_path / "nothing")), trt=make_tensorrt("10"))


@pytest.mark.parametrize("gen", GENERATIONS)
def test_efficient_nms_bundle_builds_and_checks_int32_outputs(small_checkpoint, tmp_path, gen):
    path = str(tmp_path / "nms")
    export_quietly(small_checkpoint, path, layout="efficient_nms")
    trt = make_tensorrt(gen)
    assert be.main(_args(path), trt=trt) == 0
    engine = trt.Runtime(None).deserialize_cuda_engine(
        open(os.path.join(path, "model.onnx_b1_gpu0_fp16.engine"), "rb").read())
    dtypes = {n: d for n, _, _, d in engine.io}
    assert dtypes["num_detections"] == "INT32" and dtypes["detection_classes"] == "INT32"


def test_timing_cache_is_created_on_the_first_run(bundle, tmp_path):
    cache = tmp_path / "new.cache"  # does not exist yet: TensorRT creates an empty cache from b""
    be.main(_args(bundle, timing_cache=str(cache)), trt=make_tensorrt("8.2"))
    assert cache.read_bytes() == b"timing-cache-v1+"


def test_a_stale_engine_temporary_from_a_killed_build_is_removed(bundle, capsys):
    stale = os.path.join(bundle, ".model.onnx_b1_gpu0_fp16.engine.k1lled00.tmp")
    open(stale, "wb").write(b"\0" * 1024)
    assert be.main(_args(bundle), trt=make_tensorrt("10")) == 0
    assert not os.path.exists(stale) and "interrupted earlier build" in capsys.readouterr().out
    assert os.path.isfile(os.path.join(bundle, "model.onnx_b1_gpu0_fp16.engine"))
