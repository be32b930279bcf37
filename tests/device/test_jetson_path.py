"""The device path is the bundle: build_engine and parity run as the bundle's README says, from inside the bundle
folder, each in a fresh process, with only the modules the bundle ships, torch and onnx unimportable, and the
TensorRT double (8.2.1, 10.x, 11.x) with a fake pycuda as the only TensorRT and CUDA there are."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from ..conftest import export_quietly
from .jetson_process import run_in_bundle

LAYOUTS = ["boxes_scores", "top_class", "efficient_nms"]
CASES = [(layout, gen, precision) for layout in LAYOUTS for gen in ("8.2", "10", "11")
         for precision in ("fp16", "fp32", "int8") if not (gen == "11" and precision == "int8")]


@pytest.fixture(scope="module")
def bundles(small_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("jetson")
    out = {}
    for layout in LAYOUTS:
        out[layout] = str(root / layout)
        export_quietly(small_checkpoint, out[layout], layout=layout)
    images = root / "calib"
    images.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (200, 260, 3), dtype=np.uint8)).save(str(images / "{}.jpg".format(i)))
    out["calib"] = str(images)
    return out


def _one_line(r):
    lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("[TensorRT]")]
    return lines[-1] if len(lines) == 1 else "\n".join(lines)


@pytest.mark.parametrize("layout,gen,precision", CASES, ids=["-".join(c) for c in CASES])
def test_build_then_parity_in_fresh_processes(bundles, tmp_path, layout, gen, precision):
    bundle = str(tmp_path / "bundle")
    shutil.copytree(bundles[layout], bundle)
    gpu = "nano" if precision != "int8" else "orin"  # the Nano has no INT8; JetPack 4.6 also runs Xavier
    build = ["edgeexport.build_engine", ".", "--" + precision]
    if precision == "int8":
        build += ["--calib-images", bundles["calib"]]
    r = run_in_bundle(bundle, build, trt=gen, gpu=gpu)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    engine = [f for f in os.listdir(bundle) if f.endswith(".engine")]
    assert len(engine) == 1 and os.path.isfile(os.path.join(bundle, engine[0] + ".json"))
    graph = "model_fp16.onnx" if (gen == "11" and precision == "fp16") else "model.onnx"
    assert engine[0] == "{}_b1_gpu0_{}.engine".format(graph, precision)
    record = json.load(open(os.path.join(bundle, engine[0] + ".json")))
    assert record["nms_fp32"] == (layout == "efficient_nms" and gen == "8.2" and precision != "fp32")
    r = run_in_bundle(bundle, ["edgeexport.parity", ".", "--backend", "tensorrt", "--json", "parity.json"],
                      trt=gen, gpu=gpu)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.load(open(os.path.join(bundle, "parity.json")))
    assert report["ok"] and report["matched"] > 0 and report["precision"] == precision


def test_parity_refuses_a_stale_engine_in_a_fresh_process(bundles, tmp_path):
    bundle = str(tmp_path / "bundle")
    shutil.copytree(bundles["boxes_scores"], bundle)
    assert run_in_bundle(bundle, ["edgeexport.build_engine", "."], trt="8.2", gpu="nano").returncode == 0
    r = run_in_bundle(bundle, ["edgeexport.parity", ".", "--backend", "tensorrt"], trt="10", gpu="nano")
    assert r.returncode == 2 and "tensorrt_version '8.2.1.8' (built) vs '10.13.0.35' (now)" in _one_line(r)
    assert "python3 -m edgeexport.build_engine" in _one_line(r)
    os.unlink(os.path.join(bundle, "model.onnx_b1_gpu0_fp16.engine.json"))
    r = run_in_bundle(bundle, ["edgeexport.parity", ".", "--backend", "tensorrt"], trt="8.2", gpu="nano")
    assert r.returncode == 2 and "no build record" in _one_line(r)
    # build_engine rebuilds it (its origin is unknown), after which parity runs
    r = run_in_bundle(bundle, ["edgeexport.build_engine", "."], trt="8.2", gpu="nano")
    assert r.returncode == 0 and "rebuilding" in r.stdout and "no build record" in r.stdout
    assert run_in_bundle(bundle, ["edgeexport.parity", ".", "--backend", "tensorrt"], trt="8.2",
                         gpu="nano").returncode == 0


def test_a_pycuda_that_cannot_start_cuda_is_one_line(bundles, tmp_path):
    bundle = str(tmp_path / "bundle")
    shutil.copytree(bundles["boxes_scores"], bundle)
    r = run_in_bundle(bundle, ["edgeexport.build_engine", "."], trt="8.2", gpu="nano",
                      env={"EDGEEXPORT_FAKE_CUDA_FAILS": "1"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "pycuda is installed but cannot initialise CUDA (cuInit failed" in _one_line(r)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_parity_with_onnx_runtime_on_the_device_needs_no_onnx(bundles, layout):
    """ONNX Runtime may be on a device; onnx is not: an efficient_nms bundle is checked on its graph before the
    NMS node (shipped in parity/) and the plugin's NumPy reference, importing nothing of the host."""
    r = run_in_bundle(bundles[layout], ["edgeexport.parity", ".", "--backend", "onnxruntime"], onnxruntime=True)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr


def test_gpu_id_chooses_the_gpu_the_context_is_made_on(bundles, tmp_path):
    """pycuda.autoinit would take CUDA_DEVICE, ~/.cuda_device or the first GPU: build_engine --gpu-id 1 makes its
    context on GPU 1, names the engine _gpu1_ as nvinfer does, pops the context at the end; parity runs that engine
    on GPU 1 too. A GPU the machine lacks is one line."""
    bundle = str(tmp_path / "bundle")
    shutil.copytree(bundles["boxes_scores"], bundle)
    log = str(tmp_path / "cuda.log")
    env = {"EDGEEXPORT_FAKE_GPU_COUNT": "2", "EDGEEXPORT_FAKE_CUDA_LOG": log}
    r = run_in_bundle(bundle, ["edgeexport.build_engine", ".", "--gpu-id", "1"], trt="10", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert open(log).read().split("\n")[:2] == ["make 1", "pop 1"]
    assert os.path.isfile(os.path.join(bundle, "model.onnx_b1_gpu1_fp16.engine"))
    assert "gpu-id=1" in open(os.path.join(bundle, "infer_config.txt")).read()
    os.unlink(log)
    r = run_in_bundle(bundle, ["edgeexport.parity", ".", "--backend", "tensorrt"], trt="10", env=env)
    assert r.returncode == 0 and open(log).read().split("\n")[:2] == ["make 1", "pop 1"], r.stdout + r.stderr
    r = run_in_bundle(bundle, ["edgeexport.build_engine", ".", "--gpu-id", "2"], trt="10", env=env)
    assert r.returncode == 2 and "--gpu-id 2 asked for, but this machine has 2 GPU(s)" in _one_line(r)


@pytest.fixture(scope="module")
def qdq_bundle(small_checkpoint, tmp_path_factory):
    from edgeexport.data.validation import open_dataset
    from edgeexport.export.quantize import Int8Settings
    out = str(tmp_path_factory.mktemp("jetson_qdq") / "bundle")
    calib = Int8Settings(open_dataset("synthetic", synthetic_size=4, seed=3, num_classes=3), max_images=4)
    export_quietly(small_checkpoint, out, precision="int8", int8=calib)
    return out


@pytest.mark.parametrize("gen", ["8.2", "10", "11"])
def test_int8_from_the_qdq_graph_builds_and_checks_in_fresh_processes(qdq_bundle, tmp_path, gen):
    """export --precision int8's bundle on the board: build_engine --int8 from model_int8.onnx (no calibration
    images: the graph carries the scales; TensorRT 11 too), then parity against the graph's own INT8 outputs."""
    bundle = str(tmp_path / "bundle")
    shutil.copytree(qdq_bundle, bundle)
    r = run_in_bundle(bundle, ["edgeexport.build_engine", ".", "--int8"], trt=gen, gpu="orin")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert [f for f in os.listdir(bundle) if f.endswith(".engine")] == ["model_int8.onnx_b1_gpu0_int8.engine"]
    r = run_in_bundle(bundle, ["edgeexport.parity", ".", "--backend", "tensorrt", "--json", "parity.json"],
                      trt=gen, gpu="orin")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "INT8 outputs of the Q/DQ graph" in r.stdout
    report = json.load(open(os.path.join(bundle, "parity.json")))
    assert report["ok"] and report["matched"] > 0 and report["precision"] == "int8-qdq"
