import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

SHAPES = ["circle", "square", "triangle"]


def run_cli(args, cwd=REPO, timeout=600):
    """Run a project CLI with this interpreter; returns CompletedProcess with text stdout/stderr."""
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable] + list(args), cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)


def make_model(arch="ssdlite320_mobilenet_v3_small", labels=SHAPES, calibrate=True, seed=0):
    """A model with realistic activations: random weights, BatchNorm statistics from natural photos."""
    import torch
    from edgeexport.meta import ModelMeta
    from edgeexport.models import build_ssdlite
    from edgeexport.sample_images import calibrate_batchnorm, natural_images
    torch.manual_seed(seed)
    meta = ModelMeta(arch, labels)
    model = build_ssdlite(meta)
    if calibrate:
        calibrate_batchnorm(model, natural_images())
    return model.eval(), meta


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory):
    from edgeexport.checkpoint import save_checkpoint
    model, meta = make_model()
    path = tmp_path_factory.mktemp("ckpt") / "model.pth"
    save_checkpoint(path, model, meta)
    return str(path)


@pytest.fixture(scope="session")
def small_bundle(small_checkpoint, tmp_path_factory):
    """One exported bundle shared by the tests that only read it."""
    from edgeexport.bundle import ExportOptions, export_bundle
    out = tmp_path_factory.mktemp("bundles") / "bundle"
    result = export_bundle(ExportOptions(small_checkpoint, str(out), preprocess_min_agreement=0.0),
                           echo=lambda *a: None)
    return str(out), result
