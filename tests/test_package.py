"""The package as users meet it: the README's API example runs, the public API is documented and typed, the
version lives in one place, the console commands point at real entry points, the requirements files equal the
extras they stand for, and a wheel carries jetson/. (A fresh-venv ``pip install .`` is scripts/check_install.sh,
run by CI.)"""
import configparser
import importlib
import inspect
import os
import re
import subprocess
import sys
import zipfile

import pytest

import edgeexport

from .conftest import REPO


def _setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "setup.cfg"))
    return cfg


def _lines(value):
    """A setup.cfg list (one item a line) as setuptools reads it."""
    return [line.strip() for line in value.splitlines() if line.strip()]


def _requirements(path):
    with open(os.path.join(REPO, path)) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


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
    assert _setup_cfg()["metadata"]["version"] == "attr: edgeexport.__version__"
    hits = [p for p in ("pyproject.toml", "setup.cfg", "edgeexport/device/meta.py", "edgeexport/export/bundle.py")
            if edgeexport.__version__ in open(os.path.join(REPO, p)).read()]
    assert hits == [], "the version is typed in {} too".format(hits)


def test_console_scripts_are_the_cli_entry_points():
    scripts = dict(line.replace(" ", "").split("=") for line in
                   _lines(_setup_cfg()["options.entry_points"]["console_scripts"]) if not line.startswith("#"))
    assert set(scripts) == {"edgeexport-train", "edgeexport-export", "edgeexport-emulate",
                            "edgeexport-build-engine", "edgeexport-parity", "edgeexport-deepstream-config",
                            "edgeexport-deepstream-app", "edgeexport-evaluate"}
    for target in scripts.values():
        module, func = target.split(":")
        mod = importlib.import_module(module)
        assert callable(getattr(mod, func)) and callable(mod.get_args_parser) and callable(mod.main), target


def test_device_extra_matches_the_boards_requirements_file():
    options = _setup_cfg()["options"]
    extra = [r for r in _lines(_setup_cfg()["options.extras_require"]["device"]) if not r.startswith("#")]
    assert sorted(_requirements("jetson/requirements.txt")) == sorted(["numpy>=1.13"] + extra)
    assert options["install_requires"] == "numpy>=1.13"
    assert options["python_requires"] == ">=3.6"


def test_the_hosts_requirements_file_is_the_train_and_export_extras():
    extras = _setup_cfg()["options.extras_require"]
    want = {r for name in ("train", "export") for r in _lines(extras[name]) if not r.startswith("#")}
    got = _requirements("requirements.txt")
    assert len(got) == len(set(got)) and set(got) == want


def test_every_package_is_listed_and_jetson_is_mapped_into_the_package():
    options = _setup_cfg()["options"]
    on_disk = {os.path.relpath(root, REPO).replace(os.sep, ".") for root, _, files in
               os.walk(os.path.join(REPO, "edgeexport")) if "__init__.py" in files}
    assert set(_lines(options["packages"])) == on_disk | {"edgeexport.jetson"}
    assert _lines(options["package_dir"]) == ["edgeexport.jetson = jetson"]


def test_a_wheel_carries_jetson_inside_the_package(tmp_path):
    """What export copies into every bundle must be in every install, not only in a checkout."""
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                        "--wheel-dir", str(tmp_path), REPO], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=300)
    assert r.returncode == 0, r.stdout
    wheel, = [str(p) for p in tmp_path.iterdir() if p.suffix == ".whl"]
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {os.path.relpath(os.path.join(root, f), REPO) for root, _, files in os.walk(os.path.join(REPO, "jetson"))
               for f in files if not f.endswith((".so", ".tmp"))}
    assert shipped and {"edgeexport/" + s for s in shipped} <= names
    assert "edgeexport/py.typed" in names and "edgeexport/device/check/parity.py" in names


def test_setup_takes_pytorchs_cpu_builds_only_without_a_gpu_and_where_the_index_answers(tmp_path):
    """scripts/torch_cpu_index.sh decides where scripts/setup.sh takes torch from; stand-ins for nvidia-smi and
    curl play the machine (the script itself, with bash, runs unchanged)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    def run(gpu, index_answers, env_index=None):
        for name in ("nvidia-smi", "curl"):
            if (bin_dir / name).exists():
                (bin_dir / name).unlink()
        if gpu:
            (bin_dir / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / "curl").write_text("#!/bin/sh\nexit {}\n".format(0 if index_answers else 7))
        for f in bin_dir.iterdir():
            f.chmod(0o755)
        env = {"PATH": "{}:/usr/bin:/bin".format(bin_dir)}
        if env_index is not None:
            env["EDGEEXPORT_TORCH_CPU_INDEX"] = env_index
        r = subprocess.run(["bash", os.path.join(REPO, "scripts", "torch_cpu_index.sh")], env=env,
                           stdout=subprocess.PIPE, universal_newlines=True, timeout=60)
        assert r.returncode == 0
        return r.stdout.strip()

    assert run(gpu=False, index_answers=True) == "https://download.pytorch.org/whl/cpu"
    assert run(gpu=True, index_answers=True) == ""
    assert run(gpu=False, index_answers=False) == ""
    assert run(gpu=False, index_answers=True, env_index="") == ""
    assert run(gpu=False, index_answers=True, env_index="https://mirror.example/cpu") == "https://mirror.example/cpu"
