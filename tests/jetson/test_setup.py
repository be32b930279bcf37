"""jetson/setup.sh on a stand-in board: L4T's release file, a CUDA folder whose nvcc prints CUDA 10.2's banner,
DeepStream's headers laid out as the SDK has them (nvds_version.h included), and a Python whose tensorrt, numpy
and pycuda are stand-ins, its pip recorded instead of run. The script runs from a copy of the bundle's jetson/,
so the parser it builds lands there, where custom-lib-path names it."""
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from edgeexport.device.deepstream.infer_config import PARSER_LIBRARY

from ..conftest import REPO
from .test_parser_build import write_real_layout

L4T_32_6_1 = "# R32 (release), REVISION: 6.1, GCID: 27863751, BOARD: t210ref, EABI: aarch64, DATE: Mon Jul 26 2021\n"
NVCC_10_2 = """#!/bin/sh
echo "nvcc: NVIDIA (R) Cuda compiler driver"
echo "Cuda compilation tools, release 10.2, V10.2.300"
"""
# The board's python3: pip is recorded (arguments, and the PATH it ran with) and "installs" the pycuda stand-in;
# anything else runs the real interpreter with the stand-in modules first on its path.
PYTHON = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "pip" ] && [ "$3" = "install" ]; then
  echo "$*" >> "{log}"; echo "PATH=$PATH" >> "{log}"
  mkdir -p "{site}/pycuda" && printf 'VERSION_TEXT = "2022.1"\\n' > "{site}/pycuda/__init__.py"
  : > "{site}/pycuda/driver.py"
  exit 0
fi
PYTHONPATH="{site}" exec "{real}" "$@"
"""


def _base_python():
    """An interpreter outside any virtualenv (the system Python of a Jetson), so pip goes --user as it would."""
    for name in ("python3", "python"):
        path = os.path.join(sys.base_prefix, "bin", name)
        if os.path.isfile(path):
            return path
    pytest.skip("no base interpreter beside this virtualenv")


def make_board(root, tensorrt="8.2.1.8", deepstream=(6, 0, 1), pycuda=False):
    """Folders and environment of a stand-in board under ``root``; returns (env, bundle folder, pip log)."""
    root = str(root)
    ds_inc, trt_inc, cuda_inc = write_real_layout(os.path.join(root, "headers"))
    cuda = os.path.join(root, "cuda")
    os.makedirs(os.path.join(cuda, "bin"))
    shutil.copytree(cuda_inc, os.path.join(cuda, "include"))
    with open(os.path.join(cuda, "bin", "nvcc"), "w") as f:
        f.write(NVCC_10_2)
    os.chmod(os.path.join(cuda, "bin", "nvcc"), 0o755)
    deepstream_dir = os.path.join(root, "deepstream")
    if deepstream:
        shutil.copytree(ds_inc, os.path.join(deepstream_dir, "sources", "includes"))
        with open(os.path.join(deepstream_dir, "sources", "includes", "nvds_version.h"), "w") as f:
            f.write("".join("#define NVDS_VERSION_{} {}\n".format(k, v)
                            for k, v in zip(("MAJOR", "MINOR", "MICRO"), deepstream)))
    site = os.path.join(root, "site")
    os.makedirs(os.path.join(site, "numpy"))
    with open(os.path.join(site, "numpy", "__init__.py"), "w") as f:
        f.write('__version__ = "1.13.3"\n')
    if tensorrt:
        os.makedirs(os.path.join(site, "tensorrt"))
        with open(os.path.join(site, "tensorrt", "__init__.py"), "w") as f:
            f.write('__version__ = "{}"\n'.format(tensorrt))
    if pycuda:
        os.makedirs(os.path.join(site, "pycuda"))
        with open(os.path.join(site, "pycuda", "__init__.py"), "w") as f:
            f.write('VERSION_TEXT = "2022.1"\n')
        open(os.path.join(site, "pycuda", "driver.py"), "w").close()
    log = os.path.join(root, "pip.log")
    python = os.path.join(root, "bin", "python3")
    os.makedirs(os.path.dirname(python))
    with open(python, "w") as f:
        f.write(PYTHON.format(log=log, site=site, real=_base_python()))
    os.chmod(python, 0o755)
    with open(os.path.join(root, "nv_tegra_release"), "w") as f:
        f.write(L4T_32_6_1)
    bundle = os.path.join(root, "bundle")
    shutil.copytree(os.path.join(REPO, "jetson"), os.path.join(bundle, "jetson"),
                    ignore=shutil.ignore_patterns("*.so", "*.tmp"))
    env = dict(os.environ, CUDA_HOME=cuda, DEEPSTREAM_DIR=deepstream_dir, PYTHON=python, TENSORRT_INCLUDE_DIR=trt_inc,
               TEGRA_RELEASE=os.path.join(root, "nv_tegra_release"),
               PATH=os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if "cuda" not in p))
    return env, bundle, log


def run_setup(bundle, env, *args):
    return subprocess.run(["bash", os.path.join("jetson", "setup.sh")] + list(args), cwd=bundle, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)


@pytest.fixture(scope="module")
def python_headers():
    if not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")):
        pytest.skip("this Python has no headers: the script would ask for python3-dev before installing pycuda")


def test_a_board_without_pycuda_gets_it_built_with_nvcc_on_path_and_the_parser_built(tmp_path, python_headers):
    env, bundle, log = make_board(tmp_path)
    r = run_setup(bundle, env)
    assert r.returncode == 0, r.stdout
    ready = [line for line in r.stdout.splitlines() if line.startswith("board ready: ")]
    assert len(ready) == 1, r.stdout
    for fact in ("L4T R32.6.1", "CUDA 10.2", "TensorRT 8.2.1.8", "DeepStream 6.0.1", "numpy 1.13.3", "pycuda 2022.1"):
        assert fact in ready[0], (fact, ready[0])
    pip = open(log).read().splitlines()
    assert pip[0] == "-m pip install --user -r {}".format(os.path.join(bundle, "jetson", "requirements.txt"))
    assert pip[1].startswith("PATH=" + os.path.join(env["CUDA_HOME"], "bin") + os.pathsep)  # pycuda needs nvcc
    assert os.path.isfile(os.path.join(bundle, PARSER_LIBRARY))  # where infer_config.txt's custom-lib-path points
    assert "host_include" not in r.stdout  # built against the board's (stand-in) DeepStream headers


def test_a_second_run_installs_nothing_and_rebuilds_nothing(tmp_path, python_headers):
    env, bundle, log = make_board(tmp_path, pycuda=True)
    assert run_setup(bundle, env).returncode == 0
    library = os.path.join(bundle, PARSER_LIBRARY)
    built = os.path.getmtime(library)
    r = run_setup(bundle, env)
    assert r.returncode == 0, r.stdout
    assert not os.path.exists(log) and os.path.getmtime(library) == built


def test_check_names_everything_missing_in_one_line_and_changes_nothing(tmp_path):
    env, bundle, log = make_board(tmp_path, tensorrt=None, deepstream=None)
    r = run_setup(bundle, env, "--check")
    assert r.returncode == 1, r.stdout
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("missing: "), r.stdout
    for piece in ("TensorRT's Python module (sudo apt-get install python3-libnvinfer", "DeepStream (no ",
                  "pycuda (bash jetson/setup.sh installs it)", "the parser library"):
        assert piece in lines[0], piece
    assert "CUDA 10.2" in lines[0] and "L4T R32.6.1" in lines[0]  # what was found is said too
    assert not os.path.exists(log) and not os.path.exists(os.path.join(bundle, PARSER_LIBRARY))


def test_a_tensorrt_older_than_the_sources_read_is_missing(tmp_path, python_headers):
    env, bundle, _ = make_board(tmp_path, tensorrt="8.0.1.6", pycuda=True)
    r = run_setup(bundle, env)
    assert r.returncode == 1
    assert "TensorRT >= 8.2 (found 8.0.1.6" in r.stdout.splitlines()[-1]


def test_a_failed_parser_build_is_named(tmp_path, python_headers):
    env, bundle, _ = make_board(tmp_path, pycuda=True)
    os.remove(os.path.join(env["CUDA_HOME"], "include", "cuda_runtime_api.h"))
    r = run_setup(bundle, env)
    assert r.returncode == 1
    assert "error: cuda_runtime_api.h not found in CUDA_INCLUDE_DIR" in r.stdout  # the Makefile's own line
    assert "the parser library (make -C" in r.stdout.splitlines()[-1]


def test_bad_arguments_and_help():
    script = os.path.join(REPO, "jetson", "setup.sh")
    r = subprocess.run(["bash", script, "--frobnicate"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "usage" in r.stderr
    h = subprocess.run(["bash", script, "--help"], stdout=subprocess.PIPE, universal_newlines=True)
    assert h.returncode == 0 and "--check" in h.stdout and "set -" not in h.stdout
