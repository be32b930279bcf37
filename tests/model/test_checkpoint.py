import argparse
import os
import pickle

import pytest
import torch

from edgeexport.model.checkpoint import load_model, read_checkpoint, save_checkpoint
from edgeexport.device.errors import CheckpointError, InputFileError
from edgeexport.device.meta import ModelMeta
from edgeexport.model.ssdlite import build_ssdlite

from ..conftest import SHAPES, make_model


def test_roundtrip_restores_weights_and_meta(tmp_path):
    model, meta = make_model(calibrate=False)
    p = tmp_path / "m.pth"
    save_checkpoint(p, model, meta)
    loaded, meta2, raw = load_model(str(p))
    assert meta2.labels == SHAPES and meta2.arch == meta.arch
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert not loaded.training


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_model(str(tmp_path / "nope.pth"))
    p = tmp_path / "garbage.pth"
    p.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(str(p))
    model, meta = make_model(calibrate=False)
    good = tmp_path / "good.pth"
    save_checkpoint(good, model, meta)
    trunc = tmp_path / "truncated.pth"
    trunc.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(str(trunc))


class _Evil(object):
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_pickle_carrying_code_is_refused_and_never_run(tmp_path):
    marker = str(tmp_path / "pwned")
    p = tmp_path / "evil.pth"
    torch.save({"model": {}, "meta": {}, "payload": _Evil(marker)}, p)
    assert not os.path.exists(marker)
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_model(str(p))
    assert not os.path.exists(marker), "the checkpoint's code ran"
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(CheckpointError):
        read_checkpoint(str(raw))
    assert not os.path.exists(marker)


def test_other_architecture_and_mismatched_labels(tmp_path):
    model, meta = make_model(calibrate=False)  # small, 3 classes
    p = tmp_path / "small.pth"
    save_checkpoint(p, model, meta)
    # flags that contradict the checkpoint's own metadata are refused; told to override, they meet the head
    with pytest.raises(CheckpointError, match="contradict it: labels"):
        load_model(str(p), labels=["a", "b"])
    with pytest.raises(CheckpointError, match="head predicts 3 foreground classes but 2 labels"):
        load_model(str(p), labels=["a", "b"], override=True)
    with pytest.raises(CheckpointError, match="does not match ssdlite320_mobilenet_v3_large"):
        load_model(str(p), arch="ssdlite320_mobilenet_v3_large", override=True)
    foreign = tmp_path / "resnet.pth"
    torch.save({"model": {"conv1.weight": torch.zeros(64, 3, 7, 7)}}, foreign)
    with pytest.raises(CheckpointError):
        load_model(str(foreign), labels=["a"], arch="ssdlite320_mobilenet_v3_small")
    notdict = tmp_path / "list.pth"
    torch.save([1, 2, 3], notdict)
    with pytest.raises(CheckpointError, match="not a detector checkpoint"):
        load_model(str(notdict))


def test_torchvision_reference_checkpoint_loads_with_flags(tmp_path):
    """torchvision's references/detection/train.py saves model, optimizer, args (a Namespace), epoch."""
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large
    tv = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3)
    p = tmp_path / "checkpoint.pth"
    torch.save({"model": tv.state_dict(), "optimizer": {}, "args": argparse.Namespace(lr=0.15), "epoch": 3}, p)
    with pytest.raises(CheckpointError, match="--labels"):
        load_model(str(p))
    model, meta, _ = load_model(str(p), labels=["cat", "dog"])  # arch guessed from the tensors
    assert meta.arch == "ssdlite320_mobilenet_v3_large" and meta.image_mean == [0.5] * 3 and meta.reduced_tail


def test_full_tail_detected_from_tensors(tmp_path):
    meta = ModelMeta("ssdlite320_mobilenet_v3_small", ["a"], reduced_tail=False)
    model = build_ssdlite(meta)
    p = tmp_path / "full.pth"
    torch.save({"model": model.state_dict()}, p)
    _, got, _ = load_model(str(p), labels=["a"], arch="ssdlite320_mobilenet_v3_small")
    assert got.reduced_tail is False


def test_save_is_atomic_when_interrupted(tmp_path, monkeypatch):
    model, meta = make_model(calibrate=False)
    p = tmp_path / "last.pth"
    save_checkpoint(p, model, meta)
    before = p.read_bytes()

    def dies_midway(obj, f, *a, **k):
        f.write(b"partial bytes")
        raise KeyboardInterrupt  # as if killed while writing
    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(p, model, meta)
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.pth"], "a temporary file was left behind"


@pytest.mark.parametrize("key, value, words", [
    ("labels", True, "meta.labels: expected a list of strings"),        # found by the fuzzer: a TypeError before
    ("image_std", [0.5, float("nan"), 0.5], "meta.image_std"),
    ("input_size", ["320", "320"], "meta.input_size: expected a list of integers"),
    ("arch", 5, "meta.arch: expected a string"),
])
def test_a_checkpoints_metadata_is_checked_field_by_field(small_checkpoint, tmp_path, key, value, words):
    """model.pth's meta against model.json's "model" schema (device/meta.py::SCHEMA), so a wrong type is one
    CheckpointError naming the field, never a traceback."""
    obj = read_checkpoint(small_checkpoint)
    obj["meta"][key] = value
    path = str(tmp_path / "model.pth")
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match=words):
        load_model(path)
