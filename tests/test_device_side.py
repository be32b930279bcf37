"""Device-side modules parse for Python 3.6 and import with torch, onnx and onnxruntime unavailable."""
import ast
import os
import subprocess
import sys

import pytest

from edgeexport.device_files import DEVICE_MODULES

from .conftest import REPO

DEVICE_FILES = [os.path.join(REPO, "edgeexport", m) for m in DEVICE_MODULES] + [
    os.path.join(REPO, "benchmarks", n) for n in ("trt_fps.py", "stats.py", "deepstream_perf.py")]


def test_every_listed_device_module_exists():
    missing = [f for f in DEVICE_FILES if not os.path.isfile(f)]
    assert not missing


def test_vermin_says_python_3_6_is_enough():
    vermin = os.path.join(os.path.dirname(sys.executable), "vermin")
    r = subprocess.run([vermin, "--target=3.6-", "--violations", "--no-tips",
                        "--eval-annotations", "--backport", "typing"] + DEVICE_FILES,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert r.returncode == 0, r.stdout


@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: os.path.relpath(p, REPO))
def test_no_post_36_syntax_or_calls(path):
    src = open(path).read()
    ast.parse(src, feature_version=(3, 6))  # walrus, positional-only params, ... are syntax errors here
    tree = ast.parse(src)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.module != "dataclasses" and not (
                node.module == "__future__" and any(a.name == "annotations" for a in node.names)), path
        if isinstance(node, ast.Import):
            assert all(a.name != "dataclasses" for a in node.names), path
        if isinstance(node, ast.Call):
            assert all(k.arg != "capture_output" for k in node.keywords), path
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            pass  # X | Y in annotations only matters when evaluated; annotations are checked below
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.returns is None or not isinstance(node.returns, ast.BinOp), path


NUMPY_AFTER_1_13 = ("default_rng", 'kind="stable"', "np.quantile", "np.isin(", "take_along_axis", "nanquantile")


@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: os.path.relpath(p, REPO))
def test_no_numpy_api_newer_than_jetpack_4_6(path):
    """JetPack 4.6's python3-numpy is 1.13: no numpy API added after it on the device path."""
    code = "\n".join(line.split("#")[0] for line in open(path))
    assert not [api for api in NUMPY_AFTER_1_13 if api in code], path


BLOCKER = r'''
import sys
class Block(object):
    def find_module(self, name, path=None):
        return self if name.split(".")[0] in ("torch", "torchvision", "onnx", "onnxruntime", "onnxsim") else None
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "onnx", "onnxruntime", "onnxsim"):
            raise ImportError("blocked on the device: " + name)
        return None
sys.meta_path.insert(0, Block())
import importlib
for mod in sys.argv[1:]:
    importlib.import_module(mod)
print("ok")
'''


def test_device_modules_import_without_torch_or_onnx():
    mods = ["edgeexport." + m[:-3].replace("/", ".").replace(".__init__", "") for m in DEVICE_MODULES]
    mods += ["benchmarks.trt_fps", "benchmarks.stats"]
    r = subprocess.run([sys.executable, "-c", BLOCKER] + mods, cwd=REPO, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=REPO))
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout


def test_build_engine_cli_runs_without_torch_and_says_tensorrt_is_missing(small_bundle):
    r = subprocess.run([sys.executable, "-c", BLOCKER.replace('print("ok")', "") + "\nimport runpy\n"
                        "sys.argv=['build_engine', '" + small_bundle[0] + "']\n"
                        "runpy.run_module('edgeexport.build_engine', run_name='__main__')", "edgeexport"],
                       cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=120, env=dict(os.environ, PYTHONPATH=REPO))
    assert r.returncode == 2 and "TensorRT" in r.stderr and "blocked" not in r.stderr
