"""The parser builds against headers laid out as DeepStream ships them, not only against our host stand-ins.

DeepStream 6.0.1's nvdsinfer_custom_impl.h includes TensorRT's NvCaffeParser.h and NvUffParser.h before
nvdsinfer.h (sources/includes/nvdsinfer_custom_impl.h:127-131; 6.3 the same), and TensorRT's headers include
<cuda_runtime_api.h> (TensorRT 8.2.1 include/NvInferRuntimeCommon.h:23, reached from NvCaffeParser.h through
NvInfer.h and NvInferRuntime.h). So a build that knows only DS_INCLUDE_DIR fails on a Jetson. The stand-ins here
keep that include chain (TensorRT and CUDA headers stood in by one-line files) and nothing else of theirs.
"""
import os
import shutil
import subprocess

import numpy as np
import pytest

from ..conftest import REPO
from .conftest import PARSER_DIR

HOST_INCLUDE = os.path.join(PARSER_DIR, "host_include")

# file -> what it includes, as in TensorRT 8.2.1's include/ (the chain that ends in CUDA's header)
TENSORRT_CHAIN = {
    "NvCaffeParser.h": '#include "NvInfer.h"',
    "NvUffParser.h": '#include "NvInfer.h"',
    "NvInfer.h": '#include "NvInferRuntime.h"',
    "NvInferRuntime.h": '#include "NvInferRuntimeCommon.h"',
    "NvInferRuntimeCommon.h": "#include <cuda_runtime_api.h>",
}


def write_real_layout(root, extra_detection_field=False):
    """DS_INCLUDE_DIR, TENSORRT_INCLUDE_DIR and CUDA_INCLUDE_DIR folders under ``root``, laid out like the SDK's."""
    ds, trt, cuda = (os.path.join(str(root), d) for d in ("deepstream", "tensorrt", "cuda"))
    for d in (ds, trt, cuda):
        os.makedirs(d)
    for name in os.listdir(HOST_INCLUDE):
        with open(os.path.join(HOST_INCLUDE, name)) as f:
            text = f.read()
        if name == "nvdsinfer_custom_impl.h":
            text = text.replace('#include "nvdsinfer.h"',
                                '#include "NvCaffeParser.h"\n#include "NvUffParser.h"\n#include "nvdsinfer.h"')
        if name == "nvdsinfer.h" and extra_detection_field:
            # a newer nvdsinfer.h that appends a member to the detection object
            text = text.replace("    float detectionConfidence;\n",
                                "    float detectionConfidence;\n    float appendedByANewerRelease;\n")
            assert "appendedByANewerRelease" in text
        with open(os.path.join(ds, name), "w") as f:
            f.write(text)
    for name, line in TENSORRT_CHAIN.items():
        with open(os.path.join(trt, name), "w") as f:
            f.write("#pragma once\n{}\n".format(line))
    with open(os.path.join(cuda, "cuda_runtime_api.h"), "w") as f:
        f.write("#pragma once\n#define EDGEEXPORT_STAND_IN_CUDA_RUNTIME_API 1\n")
    return ds, trt, cuda


def _make(out, ds, trt, cuda):
    return subprocess.run(["make", "-C", PARSER_DIR, "OUT=" + str(out), "DS_INCLUDE_DIR=" + ds,
                           "TENSORRT_INCLUDE_DIR=" + trt, "CUDA_INCLUDE_DIR=" + cuda],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)


def test_builds_against_the_real_header_layout_with_all_three_include_folders(tmp_path):
    ds, trt, cuda = write_real_layout(tmp_path / "inc")
    r = _make(tmp_path / "build", ds, trt, cuda)
    assert r.returncode == 0, r.stdout
    assert "host_include" not in r.stdout  # the SDK layout was taken, not the stand-ins
    assert os.path.isfile(str(tmp_path / "build" / "libnvdsparsebbox_edgeexport.so"))
    assert not os.path.exists(str(tmp_path / "build" / "libedgeexport_parser_shim.so"))  # the host's alone


@pytest.mark.parametrize("missing", ["deepstream", "tensorrt", "cuda"])
def test_a_missing_include_folder_is_one_clear_error_before_compiling(tmp_path, missing):
    folders = dict(zip(("deepstream", "tensorrt", "cuda"), write_real_layout(tmp_path / "inc")))
    folders[missing] = str(tmp_path / "empty")
    os.makedirs(folders[missing])
    r = _make(tmp_path / "build", folders["deepstream"], folders["tensorrt"], folders["cuda"])
    assert r.returncode != 0
    errors = [line for line in r.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, r.stdout
    assert {"deepstream": "DS_INCLUDE_DIR", "tensorrt": "TENSORRT_INCLUDE_DIR", "cuda": "CUDA_INCLUDE_DIR"}[missing] \
        in errors[0]
    assert "g++" not in r.stdout  # refused before the compiler ran


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_the_include_chain_really_needs_cuda(tmp_path):
    """Without the CUDA folder the compiler stops inside TensorRT's header: the stand-in chain is real."""
    ds, trt, _ = write_real_layout(tmp_path / "inc")
    r = subprocess.run(["g++", "-std=c++11", "-fsyntax-only", "-I", ds, "-I", trt, "-I", PARSER_DIR,
                        os.path.join(PARSER_DIR, "nvdsparsebbox_edgeexport.cpp")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert r.returncode != 0 and "cuda_runtime_api.h" in r.stdout


DRIVER = r"""
#include <cstdio>
#include <cstring>
#include "edgeexport_parser.h"
int main() {
    float boxes[2 * 4] = {0.1f, 0.1f, 0.5f, 0.5f, 0.2f, 0.2f, 0.9f, 0.8f};
    float scores[2 * 2] = {0.9f, 0.1f, 0.2f, 0.7f};
    NvDsInferLayerInfo b{}, s{};
    b.dataType = FLOAT; b.layerName = "boxes"; b.buffer = boxes;
    b.inferDims.numDims = 2; b.inferDims.d[0] = 2; b.inferDims.d[1] = 4; b.inferDims.numElements = 8;
    s.dataType = FLOAT; s.layerName = "scores"; s.buffer = scores;
    s.inferDims.numDims = 2; s.inferDims.d[0] = 2; s.inferDims.d[1] = 2; s.inferDims.numElements = 4;
    std::vector<NvDsInferLayerInfo> layers{b, s};
    NvDsInferNetworkInfo net{320, 320, 3};
    NvDsInferParseDetectionParams params;
    params.numClassesConfigured = 2;
    params.perClassPreclusterThreshold = {0.5f, 0.5f};
    std::vector<NvDsInferObjectDetectionInfo> objects;
    if (!NvDsInferParseEdgeExport(layers, net, params, objects)) return 2;
    for (const auto &o : objects) std::printf("%u %.6f %08x\n", o.classId, o.detectionConfidence,
                                              [&] { unsigned u; std::memcpy(&u, &o.appendedByANewerRelease, 4); return u; }());
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_detection_objects_are_value_initialised_for_newer_headers(tmp_path):
    """Built against an nvdsinfer.h whose detection object has one more member, with every automatic variable
    filled with a pattern (-ftrivial-auto-var-init=pattern): the member the parser does not know comes out zero."""
    ds, trt, cuda = write_real_layout(tmp_path / "inc", extra_detection_field=True)
    driver = tmp_path / "driver.cpp"
    driver.write_text(DRIVER)
    exe = str(tmp_path / "driver")
    flags = ["-std=c++11", "-O0", "-ftrivial-auto-var-init=pattern"]
    probe = subprocess.run(["g++"] + flags + ["-x", "c++", "-fsyntax-only", "/dev/null"], stderr=subprocess.PIPE)
    if probe.returncode != 0:
        pytest.skip("this g++ has no -ftrivial-auto-var-init (GCC >= 12)")
    subprocess.check_call(["g++"] + flags + ["-I", ds, "-I", trt, "-I", cuda, "-I", PARSER_DIR, str(driver),
                                             os.path.join(PARSER_DIR, "nvdsparsebbox_edgeexport.cpp"), "-o", exe])
    lines = subprocess.check_output([exe], universal_newlines=True).split()
    rows = np.array(lines).reshape(-1, 3)
    assert [r[0] for r in rows] == ["0", "1"]  # one detection per class, as the scores say
    assert all(r[2] == "00000000" for r in rows), rows


def test_no_build_step_a_user_copies_needs_more_than_jetpack_4_6_has(small_bundle):
    """JetPack 4.6 has cmake 3.10.2, which knows neither ``-S``/``-B DIR`` (3.13) nor ``--build ... -j`` (3.12): no
    step in the READMEs, the docs, the bundle's README or the board's files calls cmake at all; the parser is
    make's, and its Makefile needs GNU make and C++11 only."""
    texts = {p: open(p).read() for p in [os.path.join(REPO, "README.md"), os.path.join(REPO, "docs", "ARCHITECTURE.md"),
                                         os.path.join(small_bundle[0], "README.md"),
                                         os.path.join(REPO, "jetson", "setup.sh"),
                                         os.path.join(PARSER_DIR, "Makefile")]}
    for path, text in texts.items():
        commands = [line for line in text.splitlines() if line.lstrip().startswith(("cmake ", "$ cmake"))
                    or " cmake -" in line or "&& cmake" in line]
        assert not commands, (path, commands)
    makefile = texts[os.path.join(PARSER_DIR, "Makefile")]
    assert "-std=c++11" in makefile and "$(file " not in makefile  # $(file) is GNU make 4.0+, older boards lack it
    assert "make -C jetson/parser" in texts[os.path.join(small_bundle[0], "README.md")]
