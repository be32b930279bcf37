import os
import shutil
import subprocess
import sys

import numpy as np

from tests.conftest import rerecord


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", "edgeexport.parity"] + args, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)


def test_parity_cli_passes_from_inside_the_bundle(small_bundle):
    """Runs the bundle's own copy of edgeexport, as on the Jetson (cwd = bundle)."""
    path, _ = small_bundle
    r = _run([".", "--backend", "onnxruntime", "--json", "p.json"], cwd=path)
    assert r.returncode == 0, r.stderr
    assert "matched" in r.stdout and "PASS" in r.stdout
    assert os.path.isfile(os.path.join(path, "p.json"))


def test_parity_cli_fails_out_of_tolerance(small_bundle, tmp_path):
    path, _ = small_bundle
    copy = str(tmp_path / "bundle")
    shutil.copytree(path, copy)
    exp = dict(np.load(os.path.join(copy, "parity", "expected.npz")))
    exp["scores"] = exp["scores"] * 0.5  # as if the engine's scores had drifted
    np.savez(os.path.join(copy, "parity", "expected.npz"), **exp)
    rerecord(copy, "parity/expected.npz")  # a drifted backend, not an edited bundle
    r = _run([".", "--backend", "onnxruntime"], cwd=copy)
    assert r.returncode == 1 and "FAIL" in r.stdout and r.stderr.startswith("error: ")


def test_parity_cli_tensorrt_without_engine_is_one_clear_error(small_bundle):
    path, _ = small_bundle
    r = _run([".", "--backend", "tensorrt"], cwd=path)
    assert r.returncode == 2 and "build_engine" in r.stderr and len(r.stderr.strip().splitlines()) == 1
