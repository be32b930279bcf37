"""build_engine, the engine record, the calibrator and the TensorRT runner against the TensorRT double, in this
process (tests/device/test_jetson_path.py runs the same through fresh processes from inside a bundle)."""
import argparse
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from edgeexport.device import keyfile
from edgeexport.device.bundle import Bundle
from edgeexport.device.check.parity import check_bundle
from edgeexport.device.errors import (EngineBuildError, InferenceError, InputFileError, UnsupportedPrecisionError,
                                      UsageError)
from edgeexport.device.tensorrt import api
from edgeexport.device.tensorrt import build_engine as be
from edgeexport.device.tensorrt.engine_record import EngineRecord
from edgeexport.device.tensorrt.runner import TensorRTRunner

from ...conftest import export_quietly
from .trt_double import FakeCuda, make_tensorrt

GENERATIONS = ["8.2", "8.6", "10", "11"]


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch):
    """Each test is a new process for the adapter: one logger and one plugin registration per process."""
    monkeypatch.setattr(api, "_PROCESS", {"logger": None, "plugins": None})


def _args(target, **kw):
    d = dict(target=target, precision=None, batch=None, workspace=None, timing_cache=None, dla_core=None, gpu_id=0,
             calib_images=None, calib_batches=32, force=False, verbose=False)
    d.update(kw)
    return argparse.Namespace(**d)


def _double(gen, gpu="desktop", **kw):
    cuda = FakeCuda(gpu)
    return make_tensorrt(gen, gpu, cuda=cuda, **kw), cuda


def _plan(trt, path):
    return trt.Runtime(trt._logger[0] if trt._logger else None).deserialize_cuda_engine(open(path, "rb").read())._plan


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


@pytest.fixture(scope="module")
def nms_bundle(small_checkpoint, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("nms") / "bundle")
    export_quietly(small_checkpoint, out, layout="efficient_nms")
    return out


def _copy(src, tmp_path, name="b"):
    dst = str(tmp_path / name)
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("gen", GENERATIONS)
def test_fp16_build_name_record_and_config(bundle, gen, capsys):
    trt, cuda = _double(gen)
    assert be.main(_args(bundle, workspace=512), trt=trt, cuda=cuda) == 0
    graph = "model_fp16.onnx" if gen == "11" else "model.onnx"  # TensorRT 11: FP16 from the FP16 graph
    engine = os.path.join(bundle, graph + "_b1_gpu0_fp16.engine")
    plan = _plan(trt, engine)
    assert plan["workspace"] == 512 << 20 and plan["profiles"] == []
    assert plan["flags"] == ([] if gen == "11" else ["FP16"])
    assert ("init_libnvinfer_plugins", "") in trt.calls  # registered before parsing
    assert ("create_network", 0 if gen == "11" else 1) in trt.calls  # EXPLICIT_BATCH where it exists
    record = EngineRecord.load(engine)
    meta = Bundle(bundle).meta
    assert record["onnx_file"] == graph and record["onnx_sha256"] == meta.graph_sha256(graph)
    assert record["tensorrt_version"] == trt.__version__ and record["gpu_name"] == cuda.gpu["name"]
    assert record["workspace_mib"] == 512 and record["precision"] == "fp16"
    if keyfile.available():
        kf = keyfile.KeyFile(os.path.join(bundle, "infer_config.txt"))
        assert kf.string("property", "onnx-file") == graph
        assert kf.string("property", "model-engine-file") == os.path.basename(engine)
        assert kf.integer("property", "network-mode") == 2 and kf.integer("property", "workspace-size") == 512
    # a second run finds an engine whose record matches and does not rebuild, but still writes the config
    os.unlink(os.path.join(bundle, "infer_config.txt"))
    calls = len(trt.calls)
    assert be.main(_args(bundle), trt=trt, cuda=cuda) == 0 and len(trt.calls) == calls
    assert "engine up to date" in capsys.readouterr().out
    assert os.path.isfile(os.path.join(bundle, "infer_config.txt"))


@pytest.mark.parametrize("change,reason", [
    ("onnx", "onnx_sha256"), ("tensorrt", "tensorrt_version"), ("gpu", "gpu_name"), ("record", "no build record"),
    ("engine", "engine file changed"), ("workspace", "workspace_mib")])
def test_a_stale_engine_is_rebuilt_and_says_why(bundle, small_checkpoint, tmp_path, change, reason, capsys):
    trt, cuda = _double("10")
    be.main(_args(bundle, workspace=256), trt=trt, cuda=cuda)
    engine = os.path.join(bundle, "model.onnx_b1_gpu0_fp16.engine")
    args = _args(bundle, workspace=256)
    if change == "onnx":  # a re-exported bundle copied over the old one on the device: the old engine stays
        from edgeexport.device.meta import DetectionSettings
        new = str(tmp_path / "new")
        export_quietly(small_checkpoint, new, settings=DetectionSettings(0.3, 0.5, 50), opset=17, trt_version="8.4")
        shutil.copytree(new, bundle, dirs_exist_ok=True)  # the whole new bundle over the old: the engine stays
        trt, cuda = _double("10")
    elif change == "tensorrt":
        trt, cuda = _double("10")
        trt.__version__ = "10.14.0.1"
    elif change == "gpu":
        trt, cuda = _double("10", gpu="orin")
    elif change == "record":
        os.unlink(engine + ".json")
    elif change == "engine":
        open(engine, "ab").write(b"\0")
    elif change == "workspace":
        args = _args(bundle, workspace=128)
    capsys.readouterr()
    assert be.main(args, trt=trt, cuda=cuda) == 0
    out = capsys.readouterr().out
    assert "rebuilding model.onnx_b1_gpu0_fp16.engine" in out and reason in out, out
    assert EngineRecord.load(engine)["tensorrt_version"] == trt.__version__


@pytest.mark.parametrize("change,word", [("record", "no build record"), ("tensorrt", "tensorrt_version"),
                                         ("gpu", "gpu_name"), ("onnx", "another ONNX"), ("engine", "engine_sha256")])
def test_the_runner_refuses_an_engine_of_unknown_or_other_origin(bundle, change, word):
    trt, cuda = _double("10")
    be.main(_args(bundle), trt=trt, cuda=cuda)
    engine = os.path.join(bundle, "model.onnx_b1_gpu0_fp16.engine")
    meta = Bundle(bundle).meta
    if change == "record":
        os.unlink(engine + ".json")
    elif change == "tensorrt":
        trt.__version__ = "10.14.0.1"
    elif change == "gpu":
        cuda.gpu["name"] = "NVIDIA A100"
    elif change == "onnx":
        meta.onnx_sha256 = "0" * 64  # as if model.onnx had been re-exported since
    elif change == "engine":
        open(engine, "ab").write(b"\0")
    with pytest.raises(InputFileError, match=word) as e:
        TensorRTRunner(engine, trt=trt, cuda=cuda, meta=meta).activate()
    assert "build_engine" in str(e.value) and "\n" not in str(e.value)


def test_static_batch_mismatch_is_refused(bundle):
    trt, cuda = _double("10")
    with pytest.raises(UsageError, match="static batch of 1"):
        be.main(_args(bundle, batch=4), trt=trt, cuda=cuda)


@pytest.mark.parametrize("gen", GENERATIONS)
def test_dynamic_batch_profile_and_bool_returns(dynamic_bundle, gen, tmp_path):
    path = _copy(dynamic_bundle, tmp_path)
    trt, cuda = _double(gen)
    be.main(_args(path, batch=4), trt=trt, cuda=cuda)
    assert ("profile.set_shape", "input", (1, 3, 320, 320), (4, 3, 320, 320), (4, 3, 320, 320)) in trt.calls
    engine = os.path.join(path, ("model_fp16.onnx" if gen == "11" else "model.onnx") + "_b4_gpu0_fp16.engine")
    with TensorRTRunner(engine, trt=trt, cuda=cuda) as runner:
        out = runner.infer({"input": np.zeros((3, 3, 320, 320), np.float32)})
        assert out["boxes"].shape[0] == 3
        # the runner's buffers hold batch 4; a larger one is refused before TensorRT sees it
        with pytest.raises(InferenceError, match="exceeds"):
            runner.infer({"input": np.zeros((5, 3, 320, 320), np.float32)})
        # TensorRT returns false for a shape outside the profile: an InferenceError, not a silent run
        with pytest.raises(InferenceError, match="outside the engine's optimisation profile"):
            runner.infer({"input": np.zeros((1, 3, 300, 320), np.float32)})


@pytest.mark.parametrize("gen", ["8.2", "8.6", "10"])
def test_int8_calibrator_gets_nvinfer_prepared_batches_and_reuses_a_matching_cache(bundle, gen, tmp_path, capsys):
    from edgeexport.device.preprocess import nvinfer_preprocess
    images = tmp_path / "calib"
    images.mkdir()
    rng = np.random.default_rng(0)
    arrays = []
    for i in range(5):
        a = rng.integers(0, 256, (240, 300, 3), dtype=np.uint8)
        Image.fromarray(a).save(str(images / "{}.png".format(i)))
        arrays.append(a)
    trt, cuda = _double(gen, gpu="orin")
    fed = []
    real_htod = cuda.htod
    cuda.htod = lambda ptr, host: (fed.append(np.array(host)), real_htod(ptr, host))
    be.main(_args(bundle, precision="int8", calib_images=str(images)), trt=trt, cuda=cuda)
    assert ("calibrated", 5, False) in trt.calls  # 5 batches of 1, no cache before
    cache = os.path.join(bundle, "calibration.cache")
    assert open(cache, "rb").read().startswith(b"TRT-")
    assert json.load(open(cache + ".json"))["images_sha256"]
    plan = _plan(trt, os.path.join(bundle, "model.onnx_b1_gpu0_int8.engine"))
    assert plan["flags"] == ["FP16", "INT8"]
    text = open(os.path.join(bundle, "infer_config.txt")).read()
    assert "int8-calib-file=calibration.cache" in text and "network-mode=1" in text
    # what the calibrator copied to the GPU is nvinfer's preprocessing of each image, in file order
    meta = Bundle(bundle).meta
    assert len(fed) == 5
    for got, image in zip(fed, arrays):
        np.testing.assert_allclose(got.reshape(1, 3, 320, 320), nvinfer_preprocess(image, 320, 320, meta.offsets),
                                   atol=1e-4)
    # the same images again: the cache's record matches, TensorRT reads it and asks for no batch
    trt2, cuda2 = _double(gen, gpu="orin")
    be.main(_args(bundle, precision="int8", calib_images=str(images), force=True), trt=trt2, cuda=cuda2)
    assert ("calibrated", 0, True) in trt2.calls
    # other images: the cache is not trusted, calibration runs again
    Image.fromarray(arrays[0][::-1].copy()).save(str(images / "0.png"))
    trt3, cuda3 = _double(gen, gpu="orin")
    capsys.readouterr()
    be.main(_args(bundle, precision="int8", calib_images=str(images), force=True), trt=trt3, cuda=cuda3)
    assert ("calibrated", 5, False) in trt3.calls and "recalibrating" in capsys.readouterr().out
    # no images and a cache made for another model.onnx: refused with what to do
    meta_json = json.load(open(cache + ".json"))
    meta_json["onnx_sha256"] = "0" * 64
    json.dump(meta_json, open(cache + ".json", "w"))
    with pytest.raises(InputFileError, match="--calib-images"):
        be.main(_args(bundle, precision="int8", force=True), trt=_double(gen, gpu="orin")[0], cuda=FakeCuda("orin"))


@pytest.mark.parametrize("gen", ["8.2", "8.6", "10"])
def test_a_corrupt_calibration_image_is_one_error_no_abort_no_engine(bundle, gen, tmp_path):
    """On 8.2 an exception inside get_batch is std::terminate (the double aborts the process like it): the
    calibrator keeps errors out of TensorRT and raises after the build, naming the image."""
    images = tmp_path / "calib"
    images.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(str(images / "a.png"))
    (images / "b.jpg").write_bytes(b"not an image at all")
    trt, cuda = _double(gen, gpu="orin")
    with pytest.raises(InputFileError, match="b.jpg") as e:
        be.main(_args(bundle, precision="int8", calib_images=str(images)), trt=trt, cuda=cuda)
    assert "\n" not in str(e.value)
    assert not [f for f in os.listdir(bundle) if f.endswith(".engine")]
    assert ("std::terminate", "get_batch") not in trt.calls


def test_int8_refused_where_it_cannot_run(bundle, tmp_path):
    with pytest.raises(UnsupportedPrecisionError, match="Nano has none.*FP16 is the fastest"):
        be.main(_args(bundle, precision="int8", calib_images=str(tmp_path)), trt=_double("8.2", "nano")[0],
                cuda=FakeCuda("nano"))
    with pytest.raises(UnsupportedPrecisionError, match="strongly typed.*Q/DQ"):
        be.main(_args(bundle, precision="int8", calib_images=str(tmp_path)), trt=_double("11")[0], cuda=FakeCuda())
    with pytest.raises(InputFileError, match="--calib-images"):
        be.main(_args(bundle, precision="int8"), trt=_double("8.2", "orin")[0], cuda=FakeCuda("orin"))


def test_an_old_bundle_without_an_fp16_graph_says_to_re_export_on_tensorrt_11(bundle):
    meta = Bundle(bundle).meta
    meta.onnx_fp16_file = meta.onnx_fp16_sha256 = ""
    meta.save(os.path.join(bundle, "model.json"))
    with pytest.raises(UsageError, match="FP16 only from an FP16 ONNX.*re-export"):
        be.main(_args(bundle), trt=_double("11")[0], cuda=FakeCuda())
    assert be.main(_args(bundle, precision="fp32"), trt=_double("11")[0], cuda=FakeCuda()) == 0


def test_every_parser_error_is_reported_on_one_line(bundle):
    trt, cuda = _double("8.2", parser_errors=["Unsupported ONNX op HardSwish", "Assertion failed: axes"])
    with pytest.raises(EngineBuildError) as e:
        be.main(_args(bundle), trt=trt, cuda=cuda)
    assert "2 error(s)" in str(e.value) and "HardSwish" in str(e.value) and "axes" in str(e.value)
    assert "\n" not in str(e.value)
    assert not [f for f in os.listdir(bundle) if f.endswith(".engine")]


@pytest.mark.parametrize("gen", GENERATIONS)
def test_engine_io_checked_against_model_json(bundle, gen):
    trt, cuda = _double(gen, rename_output=("scores", "logits"))
    with pytest.raises(EngineBuildError, match="missing output 'scores'"):
        be.main(_args(bundle), trt=trt, cuda=cuda)
    assert not [f for f in os.listdir(bundle) if f.endswith(".engine")]


def test_out_of_memory_says_smaller_workspace_not_larger(bundle):
    trt, cuda = _double("8.2", gpu="nano", build_fails_with="Requested amount of GPU memory (1073741824 bytes) "
                                                            "could not be allocated. There may not be enough free "
                                                            "memory for allocation to succeed.")
    with pytest.raises(EngineBuildError, match="out of memory.*smaller --workspace.*swap"):
        be.main(_args(bundle), trt=trt, cuda=cuda)
    trt, cuda = _double("8.2", gpu="nano", build_fails_with="Internal error: could not find any implementation")
    with pytest.raises(EngineBuildError) as e:
        be.main(_args(bundle), trt=trt, cuda=cuda)
    assert "could not find any implementation" in str(e.value) and "workspace" not in str(e.value)


def test_default_workspace_leaves_the_board_room(bundle):
    trt, cuda = _double("8.2", gpu="nano")  # 2200 MiB free of 4096
    be.main(_args(bundle), trt=trt, cuda=cuda)
    assert _plan(trt, os.path.join(bundle, "model.onnx_b1_gpu0_fp16.engine"))["workspace"] == 550 << 20
    from edgeexport.device.tensorrt.builder import default_workspace_mib
    assert default_workspace_mib({"free_bytes": 100 << 20}) == 64 and default_workspace_mib({}) == 1024


def test_one_logger_per_process(bundle):
    trt, cuda = _double("8.2", gpu="nano")
    be.main(_args(bundle), trt=trt, cuda=cuda)
    with TensorRTRunner(os.path.join(bundle, "model.onnx_b1_gpu0_fp16.engine"), trt=trt, cuda=cuda) as r:
        r.infer({"input": np.zeros((1, 3, 320, 320), np.float32)})
    assert not [c for c in trt.calls if c[0] == "logger_differs"]
    assert trt.calls.count(("init_libnvinfer_plugins", "")) == 1


def test_dla_core_configured_or_refused(bundle):
    trt, cuda = _double("10", gpu="orin")
    be.main(_args(bundle, dla_core=1), trt=trt, cuda=cuda)
    plan = _plan(trt, os.path.join(bundle, "model.onnx_b1_dla1_fp16.engine"))
    assert plan["dla_core"] == 1 and "GPU_FALLBACK" in plan["flags"]
    with pytest.raises(UnsupportedPrecisionError, match="DLA"):
        be.main(_args(bundle, dla_core=0, force=True), trt=_double("8.2", "nano")[0], cuda=FakeCuda("nano"))


def test_dla_engines_have_a_fixed_batch_and_the_config_names_them_as_nvinfer_does(dynamic_bundle, tmp_path):
    """nvinfer names a DLA engine _dla<N>_ and gives DLA builds min = opt = max batch (nvdsinfer_model_builder.cpp
    :712-719 and createDynamicParams :866-877 @6.0.1); it must be told enable-dla / use-dla-core to look for it."""
    from edgeexport.device.keyfile import KeyFile
    bundle = str(tmp_path / "b")
    shutil.copytree(dynamic_bundle, bundle)
    trt, cuda = _double("10", gpu="orin")
    be.main(_args(bundle, dla_core=1, batch=4), trt=trt, cuda=cuda)
    plan = _plan(trt, os.path.join(bundle, "model.onnx_b4_dla1_fp16.engine"))
    assert plan["profiles"][0]["input"] == [[4, 3, 320, 320]] * 3
    kf = KeyFile(os.path.join(bundle, "infer_config.txt"))
    assert kf.string("property", "model-engine-file") == "model.onnx_b4_dla1_fp16.engine"
    assert kf.integer("property", "enable-dla") == 1 and kf.integer("property", "use-dla-core") == 1
    be.main(_args(bundle, batch=4), trt=trt, cuda=cuda)  # the GPU engine keeps nvinfer's 1..batch profile
    assert _plan(trt, os.path.join(bundle, "model.onnx_b4_gpu0_fp16.engine"))["profiles"][0]["input"][0] == \
        [1, 3, 320, 320]
    assert "enable-dla" not in KeyFile(os.path.join(bundle, "infer_config.txt")).keys("property")
    with pytest.raises(UsageError, match="DLA runs FP16 or INT8 only"):
        be.main(_args(bundle, dla_core=1, batch=4, precision="fp32"), trt=trt, cuda=cuda)


def test_timing_cache_is_read_written_and_created(bundle, tmp_path):
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    be.main(_args(bundle, timing_cache=str(cache)), trt=_double("10")[0], cuda=FakeCuda())
    assert cache.read_bytes() == b"old+"
    new = tmp_path / "new.cache"  # does not exist yet: TensorRT creates an empty cache from b""
    be.main(_args(bundle, timing_cache=str(new), force=True), trt=_double("8.2")[0], cuda=FakeCuda())
    assert new.read_bytes() == b"timing-cache-v1+"


def test_a_stale_engine_temporary_from_a_killed_build_is_removed(bundle, capsys):
    stale = os.path.join(bundle, ".model.onnx_b1_gpu0_fp16.engine.k1lled00.tmp")
    open(stale, "wb").write(b"\0" * 1024)
    trt, cuda = _double("10")
    assert be.main(_args(bundle), trt=trt, cuda=cuda) == 0
    assert not os.path.exists(stale) and "interrupted earlier build" in capsys.readouterr().out


@pytest.mark.parametrize("gen", GENERATIONS)
def test_efficient_nms_held_in_fp32_exactly_where_tensorrt_needs_it(nms_bundle, gen, tmp_path):
    """On 8.2 the plugin's FP16 path returns scores minus 1: the NMS layer gets FP32 precision and outputs and the
    builder the flag that makes it obey; on 8.4+ nothing is changed. Then parity through the runner passes."""
    path = _copy(nms_bundle, tmp_path)
    trt, cuda = _double(gen, gpu="nano" if gen == "8.2" else "desktop")
    be.main(_args(path), trt=trt, cuda=cuda)
    held = ("layer.precision", "efficient_nms", "FLOAT") in trt.calls
    assert held == (gen == "8.2")
    assert (("set_flag", "OBEY_PRECISION_CONSTRAINTS") in trt.calls) == (gen == "8.2")
    if gen == "8.2":
        assert ("layer.set_output_type", "efficient_nms", 1, "FLOAT") in trt.calls
        assert ("layer.set_output_type", "efficient_nms", 2, "FLOAT") in trt.calls
    bundle = Bundle(path)
    engine = [f for f in os.listdir(path) if f.endswith(".engine")][0]
    assert EngineRecord.load(os.path.join(path, engine))["nms_fp32"] == (gen == "8.2")
    with TensorRTRunner(os.path.join(path, engine), trt=trt, cuda=cuda, meta=bundle.meta) as runner:
        report = check_bundle(bundle, runner, "fp16")
    assert report.ok and report.matched > 0, report.table()


def test_without_the_fp32_hold_tensorrt_8_2_breaks_efficient_nms(nms_bundle, tmp_path, monkeypatch):
    """The double models the 8.2 bug: with the fix turned off, every score is one lower and parity fails."""
    path = _copy(nms_bundle, tmp_path)
    monkeypatch.setattr(be, "needs_fp32_nms", lambda trt, meta, precision: False)
    trt, cuda = _double("8.2", gpu="nano")
    be.main(_args(path), trt=trt, cuda=cuda)
    bundle = Bundle(path)
    with TensorRTRunner(os.path.join(path, "model.onnx_b1_gpu0_fp16.engine"), trt=trt, cuda=cuda) as runner:
        out = runner.infer({"input": bundle.fixtures.inputs[:1]})
        report = check_bundle(bundle, runner, "fp16")
    n = int(out["num_detections"][0, 0])
    assert n > 0 and (out["detection_scores"][0, :n] < 0).all()
    assert not report.ok


def test_the_nms_candidate_cap_is_the_gpus():
    from edgeexport.device.tensorrt.cuda_memory import nms_candidate_cap
    assert nms_candidate_cap(FakeCuda("nano").device_info()) == 2000
    assert nms_candidate_cap(FakeCuda("orin").device_info()) == 5000


@pytest.mark.parametrize("gen", GENERATIONS)
def test_runner_passes_parity_against_the_fixtures(bundle, gen):
    trt, cuda = _double(gen)
    be.main(_args(bundle, precision="fp32"), trt=trt, cuda=cuda)
    b = Bundle(bundle)
    with TensorRTRunner(os.path.join(bundle, "model.onnx_b1_gpu0_fp32.engine"), trt=trt, cuda=cuda, meta=b.meta) as r:
        report = check_bundle(b, r, "fp32")
    assert report.ok and report.matched > 0
    want = "execute_async_v2" if gen == "8.2" else "execute_async_v3"
    assert any(c[0] == want for c in trt.calls)


def test_missing_target_is_one_clear_error(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        be.main(_args(str(tmp_path / "nothing")), trt=_double("10")[0], cuda=FakeCuda())


# --- the Jetson's first run: what a failure leaves behind, which GPU, what is freed ---------------------------------

def _calibration_images(folder, bad=None):
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(str(folder / "{}.png".format(i)))
    if bad:
        (folder / bad).write_bytes(b"not an image at all")
    return str(folder)


@pytest.mark.parametrize("gen", ["8.2", "8.6", "10"])
def test_a_failed_calibration_leaves_no_cache_for_the_next_run_to_trust(bundle, gen, tmp_path):
    """TensorRT takes the calibrator's None after a bad image as the end of the data and asks it to write the cache
    of the batches it saw (the double does, as NvInfer.h:7272 at 8.2.1 says): nothing is written, so neither the
    same command again nor --int8 without images builds from a partial calibration."""
    images = _calibration_images(tmp_path / "calib", bad="2b.jpg")
    trt, cuda = _double(gen, gpu="orin")
    with pytest.raises(InputFileError, match="2b.jpg"):
        be.main(_args(bundle, precision="int8", calib_images=images), trt=trt, cuda=cuda)
    assert ("calibrated", 3, False) in trt.calls  # TensorRT finished on the batches before the bad image
    cache = os.path.join(bundle, "calibration.cache")
    assert not os.path.exists(cache) and not os.path.exists(cache + ".json")
    with pytest.raises(InputFileError, match="--calib-images"):
        be.main(_args(bundle, precision="int8"), trt=_double(gen, gpu="orin")[0], cuda=FakeCuda("orin"))
    assert not cuda.pinned  # the staging buffer went with the calibrator


def test_a_build_that_fails_after_calibrating_removes_the_cache_it_wrote(bundle, tmp_path, monkeypatch):
    images = _calibration_images(tmp_path / "calib")
    trt, cuda = _double("10", gpu="orin")
    monkeypatch.setattr(be, "check_engine_io", lambda *a: (_ for _ in ()).throw(EngineBuildError("io mismatch")))
    with pytest.raises(EngineBuildError, match="io mismatch"):
        be.main(_args(bundle, precision="int8", calib_images=images), trt=trt, cuda=cuda)
    assert ("calibrated", 4, False) in trt.calls
    assert not [f for f in os.listdir(bundle) if f.startswith("calibration.cache") or f.endswith(".engine")]
    # a cache made by an earlier, successful build is not this build's to remove
    monkeypatch.undo()
    be.main(_args(bundle, precision="int8", calib_images=images), trt=_double("10", gpu="orin")[0],
            cuda=FakeCuda("orin"))
    monkeypatch.setattr(be, "check_engine_io", lambda *a: (_ for _ in ()).throw(EngineBuildError("io mismatch")))
    with pytest.raises(EngineBuildError):
        be.main(_args(bundle, precision="int8", calib_images=images, force=True),
                trt=_double("10", gpu="orin")[0], cuda=FakeCuda("orin"))
    assert os.path.isfile(os.path.join(bundle, "calibration.cache"))


def test_calibration_batches_reach_the_gpu_from_pinned_memory(bundle, tmp_path):
    """FakeCuda refuses pageable memory as pycuda's async copies do; every batch goes through one pinned buffer."""
    images = _calibration_images(tmp_path / "calib")
    trt, cuda = _double("8.6", gpu="orin")
    be.main(_args(bundle, precision="int8", calib_images=images), trt=trt, cuda=cuda)
    assert ("calibrated", 4, False) in trt.calls and not cuda.pinned


def test_int8_on_tensorrt_11_is_refused_before_cuda_starts_or_anything_is_read(bundle, tmp_path, monkeypatch):
    from edgeexport.device.tensorrt import cuda_memory
    monkeypatch.setattr(cuda_memory, "cuda_backend", lambda *a: pytest.fail("CUDA was started"))
    monkeypatch.setattr(be, "stale_reasons", lambda *a: pytest.fail("the engine's record was read"))
    monkeypatch.setattr(be, "int8_reference", lambda *a: pytest.fail("the INT8 reference was read"))
    with pytest.raises(UnsupportedPrecisionError, match="strongly typed"):
        be.main(_args(bundle, precision="int8", calib_images=str(tmp_path)), trt=_double("11")[0])


@pytest.mark.parametrize("refuse", ["add_optimization_profile", "set_calibration_profile"])
def test_a_profile_tensorrt_refuses_is_an_error_not_a_silent_build(dynamic_bundle, tmp_path, monkeypatch, refuse):
    """add_optimization_profile returns -1 and set_calibration_profile False for an invalid profile (tensorrt-stubs
    10.13); both are checked."""
    path = _copy(dynamic_bundle, tmp_path)
    trt, cuda = _double("10", gpu="orin")
    config_class = type(trt.Builder(trt.Logger()).create_builder_config())
    monkeypatch.setattr(config_class, refuse, lambda self, profile: -1 if refuse.startswith("add") else False)
    images = _calibration_images(tmp_path / "calib")
    with pytest.raises(EngineBuildError, match="refused the .*profile"):
        be.main(_args(path, batch=4, precision="int8", calib_images=images), trt=trt, cuda=cuda)


def test_the_double_judges_profiles_as_tensorrt_does():
    trt = _double("10")[0]
    builder = trt.Builder(trt.Logger())
    config, good, bad = builder.create_builder_config(), builder.create_optimization_profile(), \
        builder.create_optimization_profile()
    good.set_shape("input", (1, 3, 8, 8), (2, 3, 8, 8), (2, 3, 8, 8))
    bad.set_shape("input", (2, 3, 8, 8), (1, 3, 8, 8), (2, 3, 8, 8))  # min > opt
    assert config.add_optimization_profile(good) == 0 and config.add_optimization_profile(bad) == -1
    assert config.set_calibration_profile(good) is True and config.set_calibration_profile(bad) is False


class _Late(object):
    """The double's device memory: the backend the runner made last (it makes its own, at activation)."""

    def __init__(self, made):
        self.made = made

    def read(self, ptr, nbytes):
        return self.made[-1][1].read(ptr, nbytes)

    def write(self, ptr, array):
        return self.made[-1][1].write(ptr, array)


def test_the_runner_frees_its_buffers_and_closes_its_own_context(bundle, monkeypatch):
    trt, shared = _double("10")
    be.main(_args(bundle, precision="fp32"), trt=trt, cuda=shared)
    engine = os.path.join(bundle, "model.onnx_b1_gpu0_fp32.engine")
    x = {"input": Bundle(bundle).fixtures.inputs[:1]}
    for _ in range(3):  # activated again and again: nothing piles up in a backend it was given, which stays open
        with TensorRTRunner(engine, trt=trt, cuda=shared) as runner:
            runner.infer(x)
    assert not shared.pinned and not shared.memory and not shared.closed
    from edgeexport.device.tensorrt import cuda_memory
    made = []

    def backend(gpu_id=0):  # a fresh "GPU" whose memory the double's engine reads
        made.append((gpu_id, FakeCuda()))
        return made[-1][1]

    monkeypatch.setattr(cuda_memory, "cuda_backend", backend)
    with TensorRTRunner(engine, trt=make_tensorrt("10", cuda=_Late(made))) as runner:
        runner.infer(x)
    (gpu_id, own), = made
    assert gpu_id == 0 and own.closed and not own.pinned and not own.memory
    # an engine named for GPU 1 runs on GPU 1; a start that fails releases what it took
    gpu1 = os.path.join(bundle, "model.onnx_b1_gpu1_fp32.engine")
    shutil.copy(engine, gpu1)
    with pytest.raises(InputFileError, match="no build record"):
        TensorRTRunner(gpu1, trt=trt).activate()
    assert made[-1][0] == 1 and made[-1][1].closed


def test_the_cuda_python_backend_sets_the_device_and_frees_what_it_allocated(monkeypatch):
    """cuda-python path: cudaSetDevice(gpu_id) before the stream; pinned memory freed one by one and at close()."""
    import sys
    import types
    from edgeexport.device.tensorrt.cuda_memory import CudaPythonMemory
    from .fake_cudart import FakeRuntime
    rt = FakeRuntime(devices=2)
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = rt
    monkeypatch.setitem(sys.modules, "cuda", types.ModuleType("cuda"))
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", rt)
    mem = CudaPythonMemory(gpu_id=1)
    assert rt.calls[:3] == ["cudaGetDeviceCount", "cudaSetDevice(1)", "cudaStreamCreate"]
    assert mem.device_info()["name"] == "Fake GPU 1"
    a = mem.pinned_empty(16, np.float32)
    mem.pinned_empty(4, np.int32)  # left for close() to free
    a[:] = np.arange(16)
    ptr, owner = mem.device_alloc(a.nbytes)
    mem.htod(ptr, a)
    back = mem.pinned_empty(16, np.float32)
    mem.dtoh(back, ptr)
    assert np.array_equal(back, a)
    mem.pinned_free(a)
    mem.free(owner)
    assert len(rt.host) == 2 and not rt.device
    mem.close()
    assert not rt.host and not rt.streams
    with pytest.raises(UsageError, match="--gpu-id 2 .* 2 GPU"):
        CudaPythonMemory(gpu_id=2)


@pytest.mark.parametrize("gen", GENERATIONS)
def test_nvinfers_own_build_holds_efficient_nms_in_fp32_where_tensorrt_needs_it(nms_bundle, bundle, gen, tmp_path):
    """Should nvinfer build the engine itself (missing, unloadable, too small a batch), it uses network-mode's flags
    alone: layer-device-precision=efficient_nms:fp32:gpu; keeps the plugin in FP32. Export cannot know the board's
    TensorRT and writes it for FP16/INT8; build_engine keeps it only where TensorRT is older than 8.4."""
    key = ("property", "layer-device-precision")
    path = _copy(nms_bundle, tmp_path)
    kf = keyfile.KeyFile(os.path.join(path, "infer_config.txt"))
    assert kf.string_list(*key) == ["efficient_nms:fp32:gpu"]  # as nvinfer reads it: g_key_file_get_string_list
    trt, cuda = _double(gen, gpu="nano" if gen == "8.2" else "desktop")
    be.main(_args(path), trt=trt, cuda=cuda)
    held = "layer-device-precision" in keyfile.KeyFile(os.path.join(path, "infer_config.txt")).keys("property")
    assert held == (gen == "8.2")
    be.main(_args(path), trt=trt, cuda=cuda)  # the engine is reused, the config written again: the same
    assert held == ("layer-device-precision" in open(os.path.join(path, "infer_config.txt")).read())
    be.main(_args(path, precision="fp32", force=True), trt=trt, cuda=cuda)
    assert "layer-device-precision" not in open(os.path.join(path, "infer_config.txt")).read()
    assert "layer-device-precision" not in open(os.path.join(bundle, "infer_config.txt")).read()  # no plugin


# --- INT8 from the Q/DQ twin (export --precision int8 --calib-data) ------------------------------------------------

@pytest.fixture(scope="module")
def qdq_bundle(small_checkpoint, tmp_path_factory):
    from edgeexport.data.validation import open_dataset
    from edgeexport.export.quantize import Int8Settings
    out = str(tmp_path_factory.mktemp("qdq") / "bundle")
    calib = Int8Settings(open_dataset("synthetic", synthetic_size=4, seed=3, num_classes=3), max_images=4,
                         method="minmax")
    export_quietly(small_checkpoint, out, precision="int8", int8=calib)
    return out


@pytest.mark.parametrize("gen", GENERATIONS)
def test_int8_builds_from_the_qdq_graph_on_every_generation(qdq_bundle, tmp_path, gen, capsys):
    b = _copy(qdq_bundle, tmp_path)
    trt, cuda = _double(gen)
    assert be.main(_args(b, precision="int8"), trt=trt, cuda=cuda) == 0
    engine = os.path.join(b, "model_int8.onnx_b1_gpu0_int8.engine")
    plan = _plan(trt, engine)
    assert plan["explicit_int8"] and plan["calibrated_batches"] is None
    # weak typing: INT8 enables the quantized layers, FP16 the rest; strongly typed: the graph decides, no flag
    assert plan["flags"] == ([] if gen == "11" else ["FP16", "INT8"])
    assert EngineRecord.load(engine)["onnx_file"] == "model_int8.onnx"
    text = open(os.path.join(b, "infer_config.txt")).read()
    assert "onnx-file=model_int8.onnx" in text and "int8-calib-file=model_int8.nvinfer-calib.txt" in text
    out = capsys.readouterr().out
    assert "from the Q/DQ graph" in out and "deprecated" not in out
    assert not os.path.exists(os.path.join(b, "calibration.cache"))


def test_a_qdq_engine_is_held_to_the_qdq_graphs_own_outputs(qdq_bundle, tmp_path):
    """Parity of an INT8 engine built from the twin compares with ONNX Runtime's INT8 outputs of the twin (the int8
    fixtures export wrote), by the int8-qdq tolerances; an engine that computes something else fails there."""
    b = _copy(qdq_bundle, tmp_path)
    trt, cuda = _double("10")
    be.main(_args(b, precision="int8"), trt=trt, cuda=cuda)
    bundle = Bundle(b)
    engine = os.path.join(b, "model_int8.onnx_b1_gpu0_int8.engine")
    with TensorRTRunner(engine, trt=trt, cuda=cuda, meta=bundle.meta) as runner:
        report = check_bundle(bundle, runner, "int8")
        assert report.ok and report.precision == "int8-qdq" and report.matched > 0, report.table()
        assert max(v["max_abs"] for k, v in report.raw.items() if k in ("boxes", "scores")) < 1e-4  # the same graph
        fp32 = check_bundle(bundle, runner, "fp32")  # the same engine against the PyTorch fixtures: INT8's error
        assert not fp32.raw_ok
    path = os.path.join(b, "parity", "expected_int8.npz")
    with np.load(path) as z:
        shifted = {k: z[k] for k in z.files}
    shifted["boxes"] = shifted["boxes"] + np.float32(0.1)  # beyond the int8-qdq box tolerance (0.09)
    np.savez(path, **shifted)
    with TensorRTRunner(engine, trt=trt, cuda=cuda, meta=bundle.meta) as runner:
        assert not check_bundle(bundle, runner, "int8").ok


def test_a_qdq_network_without_the_int8_flag_does_not_build_on_weak_typing(qdq_bundle):
    trt, _ = _double("8.2")
    logger = api.get_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(api.network_flags(trt))
    api.parse_onnx(trt, network, logger, open(os.path.join(qdq_bundle, "model_int8.onnx"), "rb").read())
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    assert builder.build_serialized_network(network, config) is None
    config.set_flag(trt.BuilderFlag.INT8)
    assert builder.build_serialized_network(network, config) is not None


def _edited_qdq(qdq_bundle, edit):
    import onnx
    from onnx import numpy_helper
    proto = onnx.load(os.path.join(qdq_bundle, "model_int8.onnx"))
    node = [n for n in proto.graph.node if n.op_type == "QuantizeLinear"][0]
    edit(proto, node, numpy_helper)
    return proto.SerializeToString()


@pytest.mark.parametrize("gen,edit,accepted", [
    ("8.2", "two_inputs", False), ("10", "two_inputs", True),
    ("8.2", "zero_point", False), ("10", "zero_point", False), ("11", "zero_point", False)])
def test_the_parser_takes_qdq_as_each_version_does(qdq_bundle, gen, edit, accepted):
    def two_inputs(proto, node, nh):
        del node.input[2]

    def zero_point(proto, node, nh):
        init = [t for t in proto.graph.initializer if t.name == node.input[2]][0]
        init.CopyFrom(nh.from_array(np.ones(nh.to_array(init).shape, np.int8), init.name))
    data = _edited_qdq(qdq_bundle, {"two_inputs": two_inputs, "zero_point": zero_point}[edit])
    trt, _ = _double(gen)
    logger = api.get_logger(trt)
    network = trt.Builder(logger).create_network(api.network_flags(trt))
    if accepted:
        api.parse_onnx(trt, network, logger, data)
    else:
        with pytest.raises(EngineBuildError, match="3 inputs" if edit == "two_inputs" else "symmetric"):
            api.parse_onnx(trt, network, logger, data)


def test_int8_without_a_qdq_graph_on_tensorrt_11_names_the_export(bundle):
    trt, cuda = _double("11")
    with pytest.raises(UnsupportedPrecisionError, match="--precision int8 --calib-data"):
        be.main(_args(bundle, precision="int8"), trt=trt, cuda=cuda)


def test_the_calibrator_on_tensorrt_10_warns_it_is_deprecated(bundle, tmp_path, capsys):
    images = tmp_path / "calib"
    images.mkdir()
    for i in range(2):
        Image.fromarray(np.full((40, 60, 3), 60 * i, np.uint8)).save(str(images / "{}.png".format(i)))
    trt, cuda = _double("10")
    assert be.main(_args(bundle, precision="int8", calib_images=str(images)), trt=trt, cuda=cuda) == 0
    assert "deprecated INT8 calibrators in 10.1" in capsys.readouterr().out
    trt, cuda = _double("8.6")
    assert be.main(_args(bundle, precision="int8", calib_images=str(images), force=True), trt=trt, cuda=cuda) == 0
    assert "deprecated" not in capsys.readouterr().out


def test_a_nano_is_told_fp16_is_its_best(qdq_bundle, tmp_path):
    b = _copy(qdq_bundle, tmp_path)
    trt, cuda = _double("8.2", gpu="nano")
    with pytest.raises(UnsupportedPrecisionError, match="FP16 is the fastest it runs; build --fp16"):
        be.main(_args(b, precision="int8"), trt=trt, cuda=cuda)
