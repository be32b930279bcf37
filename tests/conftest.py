import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

SHAPES = ["circle", "square", "triangle"]


def run_cli(args, cwd=REPO, timeout=600, env=None):
    """Run a project CLI with this interpreter; returns CompletedProcess with text stdout/stderr."""
    env = dict(os.environ, PYTHONPATH=REPO, **(env or {}))
    return subprocess.run([sys.executable] + list(args), cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)


def make_model(arch="ssdlite320_mobilenet_v3_small", labels=SHAPES, calibrate=True, seed=0):
    """A model with realistic activations: random weights, BatchNorm statistics from natural photos."""
    import torch
    from edgeexport.device.meta import ModelMeta
    from edgeexport.data.photos import natural_images
    from edgeexport.model import build_ssdlite, calibrate_batchnorm
    torch.manual_seed(seed)
    meta = ModelMeta(arch, labels)
    model = build_ssdlite(meta)
    if calibrate:
        calibrate_batchnorm(model, natural_images())
    return model.eval(), meta


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory):
    from edgeexport.model.checkpoint import save_checkpoint
    model, meta = make_model()
    path = tmp_path_factory.mktemp("ckpt") / "model.pth"
    save_checkpoint(path, model, meta)
    return str(path)


def export_quietly(model, output_dir, **kwargs):
    """edgeexport.export_bundle without its printed report."""
    from edgeexport.export.pipeline import export_bundle
    return export_bundle(model, str(output_dir), echo=lambda *a: None, **kwargs)


@pytest.fixture(scope="session")
def small_bundle(small_checkpoint, tmp_path_factory):
    """One exported bundle shared by the tests that only read it: (path, ExportResult)."""
    out = tmp_path_factory.mktemp("bundles") / "bundle"
    return str(out), export_quietly(small_checkpoint, out)
