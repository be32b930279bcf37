"""A small model trained on the synthetic shapes, a clip of them and its bundle: shared by the emulator tests."""
import pytest

from ..conftest import run_cli


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("emulate")
    r = run_cli(["-m", "edgeexport.train.cli", "--dataset", "synthetic", "--arch", "ssdlite320_mobilenet_v3_small",
                 "--synthetic-train-size", "384", "--synthetic-val-size", "8", "--synthetic-image-size", "320", "320",
                 "--epochs", "6", "-b", "16", "--lr", "0.06", "--warmup-iters", "10", "--bn-momentum", "0.1",
                 "--data-augmentation", "hflip", "-j", "0", "--no-progress", "--threads", "2", "--eval-every", "100",
                 "--output-dir", str(root / "train")])
    assert r.returncode == 0, r.stderr
    clip = str(root / "clip.mp4")
    r = run_cli(["-m", "edgeexport.emulate.make_clip", clip, "--seconds", "2", "--fps", "10"])
    assert r.returncode == 0, r.stderr
    r = run_cli(["export.py", "--model-path", str(root / "train" / "last.pth"), "--output-dir", str(root / "bundle"),
                 "--video", clip, "--pre-cluster-threshold", "0.3"])
    assert r.returncode == 0, r.stderr
    return root
