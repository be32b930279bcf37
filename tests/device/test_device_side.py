"""The device side is what the layout says: edgeexport/device/ is grouped by what each module talks to, with no
import circle anywhere in the package; it and the package's top-level modules parse for Python 3.6, use no numpy
newer than JetPack 4.6's, import without torch or onnx, and run from the bundle alone."""
import ast
import collections
import glob
import os
import subprocess
import sys

import pytest

from ..conftest import REPO
from .jetson_process import BLOCKER, hide_checkout, run_in_bundle

PACKAGE = os.path.join(REPO, "edgeexport")
DEVICE_FILES = sorted(glob.glob(os.path.join(PACKAGE, "*.py")) +
                      glob.glob(os.path.join(PACKAGE, "device", "**", "*.py"), recursive=True))
DEVICE_BENCHMARKS = [os.path.join(REPO, "benchmarks", n) for n in ("trt_fps.py", "stats.py", "deepstream_perf.py")]
HOST_ONLY = ("torch", "torchvision", "onnx", "onnxruntime", "onnxsim")


def _module_name(path):
    rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


# edgeexport/device/ by what each module talks to; the modules on its own floor are the shared ground
GROUPS = {
    "tensorrt": {"api", "builder", "calibrator", "cuda_memory", "engine_record", "runner", "build_engine"},
    "deepstream": {"infer_config", "nvinfer_config", "app_config", "streams", "msgconv", "install", "mjpeg_avi",
                   "parser_library", "pyds_app", "bundle_check"},
    "check": {"parity", "compare", "evaluate", "eval_rows", "coco_eval"},
}
SHARED_GROUND = {"meta", "bundle", "preprocess", "postprocess", "fileio", "keyfile", "naming", "errors", "cli",
                 "outputs"}
# the modules a group's outside world is reached through: TensorRT and CUDA; GStreamer and pyds
TALKS_TO = {"tensorrt": ("tensorrt", "pycuda", "cuda"), "deepstream": ("gi", "pyds")}


def _modules(folder):
    return {os.path.basename(f)[:-3] for f in glob.glob(os.path.join(folder, "*.py"))} - {"__init__"}


def test_the_device_side_is_grouped_by_what_it_talks_to():
    device = os.path.join(PACKAGE, "device")
    for group, modules in GROUPS.items():
        assert _modules(os.path.join(device, group)) == modules, group
    assert _modules(device) == SHARED_GROUND
    assert _modules(os.path.join(device, "runners")) == {"base", "onnxruntime"}
    for path in glob.glob(os.path.join(device, "**", "*.py"), recursive=True):
        group = os.path.relpath(path, device).split(os.sep)[0]
        for node in ast.walk(ast.parse(open(path).read())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                for owner, outside in TALKS_TO.items():
                    assert name.split(".")[0] not in outside or group == owner, \
                        "{} imports {}: what talks to {} lives in device/{}/".format(path, name, outside[0], owner)


def import_graph():
    """{module: modules of the package it imports} for every module of edgeexport, module-level and function-level
    imports alike (``importlib`` calls by name, such as the runner registry, are not imports of this graph)."""
    paths = {_module_name(p): p for p in glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True)}
    graph = collections.defaultdict(set)
    for module, path in paths.items():
        package = module.split(".") if path.endswith("__init__.py") else module.split(".")[:-1]
        for node in ast.walk(ast.parse(open(path).read())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                    if node.level else node.module or ""
                targets = [base + "." + a.name for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                while target and target not in paths:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    graph[module].add(target)
    return graph


def _circle(graph):
    """One circle of ``graph`` as a list of its nodes, or None."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _group(module):
    """The folder a module belongs to: a device group, the device's shared ground, a host stage, or the top."""
    parts = module.split(".")[1:]
    if parts[:1] == ["device"]:
        return "device." + parts[1] if len(parts) > 2 and parts[1] in GROUPS else "device"
    return parts[0] if len(parts) > 1 or (parts and os.path.isdir(os.path.join(PACKAGE, parts[0]))) else "top"


def test_no_import_circles_between_modules_or_between_folders():
    graph = import_graph()
    assert graph["edgeexport.device.check.parity"]  # the graph sees imports at all
    assert _circle(graph) is None, " -> ".join(_circle(graph))
    folders = collections.defaultdict(set)
    for module, targets in graph.items():
        folders[_group(module)].update(_group(t) for t in targets if _group(t) != _group(module))
    assert _circle(folders) is None, " -> ".join(_circle(folders))
    assert not folders["device"], "the shared ground imports {}".format(sorted(folders["device"]))


def test_the_circle_finder_finds_circles():
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _circle({"a": {"b"}, "b": set()}) is None


def test_top_level_modules_import_only_the_device_side():
    """The bundle ships every top-level module: none may reach into a host stage."""
    host_stages = {d for d in os.listdir(PACKAGE) if os.path.isdir(os.path.join(PACKAGE, d))
                   and d not in ("device", "__pycache__")}
    assert {"train", "export", "emulate", "model", "data"} <= host_stages
    for path in glob.glob(os.path.join(PACKAGE, "*.py")):
        tree = ast.parse(open(path).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                assert node.module.split(".")[0] == "device", (path, node.module)
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert node.module.split(".")[0] not in HOST_ONLY + ("edgeexport",), (path, node.module)


def test_device_modules_never_import_host_stages():
    """Nothing above edgeexport.device, never torch or onnx; ONNX Runtime only inside its optional runner."""
    never = ("torch", "torchvision", "onnx", "onnxsim", "edgeexport")
    for path in glob.glob(os.path.join(PACKAGE, "device", "**", "*.py"), recursive=True):
        depth = os.path.relpath(path, os.path.join(PACKAGE, "device")).count(os.sep) + 1
        tree = ast.parse(open(path).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= depth, "{} imports above edgeexport.device: {}".format(path, node.module)
                assert node.level > 0 or (node.module or "").split(".")[0] not in never, path
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] not in never for a in node.names), path
        for node in tree.body:  # module level: no optional runtime either
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            assert all(n.split(".")[0] not in HOST_ONLY for n in names), path


def test_vermin_says_python_3_6_is_enough():
    vermin = os.path.join(os.path.dirname(sys.executable), "vermin")
    r = subprocess.run([vermin, "--target=3.6-", "--violations", "--no-tips", "--eval-annotations",
                        "--backport", "typing"] + DEVICE_FILES + DEVICE_BENCHMARKS,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert r.returncode == 0, r.stdout


@pytest.mark.parametrize("path", DEVICE_FILES + DEVICE_BENCHMARKS, ids=lambda p: os.path.relpath(p, REPO))
def test_no_post_36_syntax_or_calls(path):
    src = open(path).read()
    ast.parse(src, feature_version=(3, 6))  # walrus, positional-only params, ... are syntax errors here
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom):
            assert node.module != "dataclasses" and not (
                node.module == "__future__" and any(a.name == "annotations" for a in node.names)), path
        if isinstance(node, ast.Import):
            assert all(a.name != "dataclasses" for a in node.names), path
        if isinstance(node, ast.Call):
            assert all(k.arg not in ("capture_output", "text") for k in node.keywords), path
        if isinstance(node, ast.JoinedStr):
            pytest.fail("{}: f-string at line {} (device code is Python 3.6 without f-strings by rule)".format(
                path, node.lineno))


NUMPY_AFTER_1_13 = ("default_rng", 'kind="stable"', "np.quantile", "np.isin(", "take_along_axis", "nanquantile")


@pytest.mark.parametrize("path", DEVICE_FILES + DEVICE_BENCHMARKS, ids=lambda p: os.path.relpath(p, REPO))
def test_no_numpy_api_newer_than_jetpack_4_6(path):
    """JetPack 4.6's python3-numpy is 1.13: no numpy API added after it on the device path."""
    code = "\n".join(line.split("#")[0] for line in open(path))
    assert not [api for api in NUMPY_AFTER_1_13 if api in code], path


def test_device_modules_import_without_torch_or_onnx():
    mods = [_module_name(f) for f in DEVICE_FILES] + ["benchmarks.trt_fps", "benchmarks.stats"]
    code = BLOCKER + "import importlib\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint('ok')\n"
    r = subprocess.run([sys.executable, "-c", code] + mods, cwd=REPO, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=REPO))
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout


def test_bundle_device_commands_run_from_the_bundle_alone(small_bundle):
    bundle = small_bundle[0]
    r = run_in_bundle(bundle, ["edgeexport.parity", ".", "--backend", "onnxruntime"])
    assert r.returncode == 2, r.stdout + r.stderr  # onnxruntime is blocked too: one line, no traceback
    assert "onnxruntime" in r.stderr and "Traceback" not in r.stderr, r.stderr
    for cmd in ("edgeexport.build_engine", "edgeexport.parity"):
        r = run_in_bundle(bundle, [cmd, "--help"])
        assert r.returncode == 0 and "usage" in r.stdout, r.stderr
    r = run_in_bundle(bundle, ["edgeexport.build_engine", "."])
    assert r.returncode == 2 and "TensorRT" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_the_bundle_imports_its_own_copy(small_bundle):
    bundle = small_bundle[0]
    code = BLOCKER + ("import edgeexport, edgeexport.device.check.parity\n"
                      "print(edgeexport.device.check.parity.__file__)\n")
    r = subprocess.run([sys.executable, "-c", hide_checkout("sys.path.insert(0, os.getcwd())\n" + code)], cwd=bundle,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert r.returncode == 0, r.stderr
    assert os.path.realpath(r.stdout.strip()).startswith(os.path.realpath(bundle)), r.stdout
