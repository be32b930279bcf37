import os
import sys

import pytest

from . import forked_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

SHAPES = ["circle", "square", "triangle"]


def run_cli(args, cwd=REPO, timeout=600, env=None, fresh=False):
    """Run a project CLI with this interpreter; returns CompletedProcess with text stdout/stderr. A child forked
    from a process that has imported torch already (tests/forked_cli.py) unless ``fresh``, or unless a fork would
    not run it as a new interpreter would."""
    env = dict(os.environ, PYTHONPATH=REPO, **(env or {}))
    return forked_cli.run(list(args), cwd=str(cwd), env=env, timeout=timeout, fresh=fresh)


def pytest_terminal_summary(terminalreporter):
    if forked_cli.RUNS:
        terminalreporter.write_line("commands run: " + ", ".join(
            "{} {}".format(n, how) for how, n in sorted(forked_cli.RUNS.items())))


def pytest_unconfigure(config):
    forked_cli.shutdown()


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


def rerecord(bundle_dir, *names):
    """Record the current sha256 of the bundle's files ``names`` in its model.json, as if export had written them:
    for tests that stand in a changed file for a changed backend (the bundle check refuses an unrecorded edit)."""
    import json
    from edgeexport.device.bundle import file_sha256
    path = os.path.join(bundle_dir, "model.json")
    with open(path) as f:
        d = json.load(f)
    for name in names:
        d["files"][name] = file_sha256(os.path.join(bundle_dir, name))
    with open(path, "w") as f:
        json.dump(d, f)


@pytest.fixture(scope="session")
def small_bundle(small_checkpoint, tmp_path_factory):
    """One exported bundle shared by the tests that only read it: (path, ExportResult)."""
    out = tmp_path_factory.mktemp("bundles") / "bundle"
    return str(out), export_quietly(small_checkpoint, out)


# A small model trained on the synthetic shapes, a clip of them and its bundle: for the emulator and evaluate tests.
# 8 epochs: after 6 the model found only 14 shapes at score >= 0.3 in the clip's 20 frames (480x480, not the
# training size), too few for the emulation test to compare detections on.
@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("emulate")
    r = run_cli(["-m", "edgeexport.train.cli", "--dataset", "synthetic", "--arch", "ssdlite320_mobilenet_v3_small",
                 "--synthetic-train-size", "384", "--synthetic-val-size", "8", "--synthetic-image-size", "320", "320",
                 "--epochs", "8", "-b", "16", "--lr", "0.06", "--warmup-iters", "10", "--bn-momentum", "0.1",
                 "--data-augmentation", "hflip", "-j", "0", "--no-progress", "--threads", "2", "--eval-every", "100",
                 "--output-dir", str(root / "train")], timeout=1800)  # ~2-4 min alone; on a shared 2-core
    # machine several times that, and a hard limit hit there turns every test of the bundle into an error
    assert r.returncode == 0, r.stderr
    clip = str(root / "clip.mp4")
    r = run_cli(["-m", "edgeexport.emulate.make_clip", clip, "--seconds", "2", "--fps", "10"])
    assert r.returncode == 0, r.stderr
    r = run_cli(["export.py", "--model-path", str(root / "train" / "last.pth"), "--output-dir", str(root / "bundle"),
                 "--video", clip, "--pre-cluster-threshold", "0.3"])
    assert r.returncode == 0, r.stderr
    return root
