"""The device side on a real Python 3.6 (JetPack 4.6's is 3.6.9), where this machine has one (pyenv's 3.6.15):
1. with JetPack 4.6's numpy 1.13.3: the bundle's metadata, configs, fixtures, the parity comparison, the NumPy
   parser and NMS references, the engine record;
2. with the TensorRT double (which needs ONNX Runtime 1.10, the last for 3.6, and with it numpy 1.19): build_engine
   and parity from inside the bundle, in fresh processes, for every layout, TensorRT 8.2.1 and 10.x.
The virtual environments are made once under build/py36/ and reused."""
import glob
import os
import subprocess

import pytest

from ..conftest import REPO, export_quietly
from .jetson_process import hide_checkout, run_in_bundle


def _python36():
    candidates = sorted(glob.glob(os.path.join(os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv")),
                                               "versions", "3.6*", "bin", "python3.6"))) + ["python3.6"]
    for c in candidates:
        try:
            out = subprocess.run([c, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 universal_newlines=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if out.startswith("Python 3.6"):
            return c
    return None


PY36 = _python36()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(PY36 is None, reason="no Python 3.6 on this machine")]


def _venv(name, packages):
    """build/py36/<name>: a Python 3.6 venv with ``packages``, made once (a stamp records what it holds)."""
    root = os.path.join(REPO, "build", "py36", name)
    python = os.path.join(root, "bin", "python")
    stamp = os.path.join(root, ".installed")
    want = " ".join(packages)
    if not (os.path.isfile(stamp) and open(stamp).read() == want):
        subprocess.check_call([PY36, "-m", "venv", "--clear", root])
        pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.check_call(pip + ["--upgrade", "pip<22"])
        subprocess.check_call(pip + list(packages))
        open(stamp, "w").write(want)
    return python


@pytest.fixture(scope="module")
def jetpack_python():
    return _venv("jetpack46", ["numpy==1.13.3"])


@pytest.fixture(scope="module")
def double_python():
    return _venv("double", ["onnxruntime<1.11", "onnx<1.12", "protobuf<4"])


DEVICE_MATH = r'''
import sys, numpy
assert sys.version_info[:2] == (3, 6) and numpy.__version__ == "1.13.3", (sys.version, numpy.__version__)
import edgeexport
from edgeexport.device.deepstream.bundle_check import load_bundle
from edgeexport.device.check.compare import compare_outputs
from edgeexport.device.deepstream.infer_config import infer_config_text
from edgeexport.device.postprocess import efficient_nms_reference, parse_boxes_scores
from edgeexport.device.tensorrt.engine_record import new_record, EngineRecord
assert edgeexport.__file__.startswith(sys.argv[1]), edgeexport.__file__
b = load_bundle(".")
fx = b.fixtures
h, w = b.meta.model.input_size
same = compare_outputs(fx.expected, fx.expected, w, h, "fp32", b.meta.settings, fx.threshold)
assert same.ok and same.matched > 0, same.table()
moved = dict(fx.expected, boxes=fx.expected["boxes"] + 0.01)
assert not compare_outputs(fx.expected, moved, w, h, "fp32", b.meta.settings, fx.threshold).ok
assert "model-engine-file=model.onnx_b1_gpu0_fp16.engine" in infer_config_text(b.meta)
n, boxes, scores, classes = efficient_nms_reference(fx.expected["boxes"][0], fx.expected["scores"][0], 0.3, 0.5, 20)
dets = parse_boxes_scores(fx.expected["boxes"][0], fx.expected["scores"][0], w, h, [0.3] * 3)
assert int(n[0]) <= 20 and len(dets) >= int(n[0])
new_record("model.onnx", b.meta.onnx_sha256, "8.2.1.8", {"name": "NVIDIA Tegra X1", "compute_capability": "5.3"},
           "fp16", 1, False, b.meta.layout, None, False, 512, "0" * 64).save("x.engine")
assert EngineRecord.load("x.engine")["gpu_name"] == "NVIDIA Tegra X1"
print("ok", sys.version.split()[0], numpy.__version__)
'''


def test_device_math_on_jetpacks_python_and_numpy(jetpack_python, small_bundle, tmp_path):
    import shutil
    bundle = str(tmp_path / "bundle")
    shutil.copytree(small_bundle[0], bundle)
    code = hide_checkout("sys.path.insert(0, os.getcwd())\n" + DEVICE_MATH)
    r = subprocess.run([jetpack_python, "-c", code, bundle], cwd=bundle, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=120,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert r.returncode == 0 and r.stdout.startswith("ok 3.6"), r.stdout + r.stderr


@pytest.mark.parametrize("layout", ["boxes_scores", "top_class", "efficient_nms"])
@pytest.mark.parametrize("gen", ["8.2", "10"])
def test_build_and_parity_on_python_36(double_python, small_checkpoint, tmp_path, layout, gen):
    bundle = str(tmp_path / "bundle")
    export_quietly(small_checkpoint, bundle, layout=layout)
    for args in (["edgeexport.build_engine", "."], ["edgeexport.parity", ".", "--backend", "tensorrt"]):
        r = run_in_bundle(bundle, args, trt=gen, gpu="nano", python=double_python)
        assert r.returncode == 0, r.stdout + r.stderr
    assert "result: PASS" in r.stdout
