"""The package as users meet it: the README's API example runs, the public API is documented and typed, the
version lives in one place, the console commands point at real entry points, the device extra and the device
requirements agree. (A fresh-venv ``pip install .`` is scripts/check_install.sh, run by CI.)"""
import importlib
import inspect
import os
import re
import subprocess
import sys

import pytest

import edgeexport

from .conftest import REPO

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None


def _pyproject():
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def readme_api_example():
    text = open(os.path.join(REPO, "README.md")).read()
    block = re.search(r"<!-- api-example: begin.*?-->\s*```python\n(.*?)```\s*<!-- api-example: end -->", text, re.S)
    assert block, "the README's API example is missing its markers"
    return block.group(1)


def test_readme_api_example_runs(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(readme_api_example())
    r = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "export parity: PASS" in r.stdout and "result: PASS" in r.stdout
    assert "evaluate: 8 images" in r.stdout and "nvinfer" in r.stdout
    assert (tmp_path / "api_bundle" / "model.onnx").is_file()


def test_public_api_is_documented_and_resolves():
    assert edgeexport.__all__ and len(set(edgeexport.__all__)) == len(edgeexport.__all__)
    for name in edgeexport.__all__:
        obj = getattr(edgeexport, name)
        if name != "__version__":
            assert inspect.getdoc(obj), "{} has no docstring".format(name)
    assert os.path.isfile(os.path.join(REPO, "edgeexport", "py.typed"))
    with pytest.raises(AttributeError):
        edgeexport.no_such_name


def test_import_edgeexport_imports_neither_torch_nor_onnx():
    r = subprocess.run([sys.executable, "-c", "import sys, edgeexport; print(sorted(m for m in ('torch', 'onnx', "
                        "'onnxruntime', 'tensorrt') if m in sys.modules))"], stdout=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    assert r.stdout.strip() == "[]"


def test_version_is_written_once_and_installed_as_such():
    from importlib.metadata import version
    assert version("edgeexport") == edgeexport.__version__
    assert _pyproject()["project"]["dynamic"] == ["version"]
    hits = [p for p in ("pyproject.toml", "edgeexport/device/meta.py", "edgeexport/export/bundle.py")
            if edgeexport.__version__ in open(os.path.join(REPO, p)).read()]
    assert hits == [], "the version is typed in {} too".format(hits)


def test_console_scripts_are_the_cli_entry_points():
    scripts = _pyproject()["project"]["scripts"]
    assert set(scripts) == {"edgeexport-train", "edgeexport-export", "edgeexport-emulate",
                            "edgeexport-build-engine", "edgeexport-parity", "edgeexport-deepstream-config",
                            "edgeexport-deepstream-app", "edgeexport-evaluate"}
    for target in scripts.values():
        module, func = target.split(":")
        mod = importlib.import_module(module)
        assert callable(getattr(mod, func)) and callable(mod.get_args_parser) and callable(mod.main), target


def test_device_extra_matches_the_bundles_requirements_file():
    extra = _pyproject()["project"]["optional-dependencies"]["device"]
    with open(os.path.join(REPO, "edgeexport", "device", "requirements.txt")) as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    assert sorted(lines) == sorted(["numpy>=1.13"] + extra)
    assert _pyproject()["project"]["dependencies"] == ["numpy>=1.13"]
    assert _pyproject()["project"]["requires-python"] == ">=3.6"
