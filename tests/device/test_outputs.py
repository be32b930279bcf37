"""The output policy (edgeexport/device/outputs.py): what every command's outputs may not be."""
import os

import pytest

from edgeexport.device.errors import EdgeExportError, InputFileError, UsageError
from edgeexport.device.outputs import RunOutputs


@pytest.fixture
def inputs(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(b"x")
    (tmp_path / "model.pth").write_bytes(b"weights")
    return tmp_path, str(images), str(tmp_path / "model.pth")


def test_an_output_is_never_an_input_nor_inside_an_input_folder(inputs):
    root, images, model = inputs
    outputs = RunOutputs(reads=[images, model])
    with pytest.raises(UsageError, match="destroy the input"):
        outputs.file(model, "--json")
    with pytest.raises(UsageError, match="lies inside .*images"):
        outputs.file(os.path.join(images, "new.json"), "--json")
    with pytest.raises(UsageError, match="lies inside"):
        outputs.file(os.path.join(images, "a.jpg"), "--png")
    assert outputs.file(str(root / "out" / "r.json"), "--json") == str(root / "out" / "r.json")
    assert os.path.isdir(str(root / "out"))  # its folder is made before the slow work
    assert outputs.file(None) is None


def test_two_outputs_of_one_run_may_not_name_the_same_file(inputs):
    root = inputs[0]
    outputs = RunOutputs()
    outputs.file(str(root / "x.json"), "--out")
    with pytest.raises(UsageError, match="--out and --json name the same file"):
        outputs.file(str(root / "x.json"), "--json")


def test_a_bundles_own_files_are_never_an_output(small_bundle):
    from edgeexport.device.bundle import Bundle
    bundle = Bundle(small_bundle[0])
    outputs = RunOutputs(bundle=bundle)
    for name in ("model.json", "model.onnx", "infer_config.txt", "labels.txt", "parity/inputs.npy"):
        with pytest.raises(UsageError, match="destroy the input"):
            outputs.file(os.path.join(small_bundle[0], name), "--json")


def test_names_leave_room_for_the_temporary_and_folders_do_not_overlap_inputs(inputs):
    root, images, model = inputs
    outputs = RunOutputs(reads=[images, model])
    with pytest.raises(InputFileError, match="at most 231"):
        outputs.file(str(root / ("x" * 240 + ".json")), "--json")
    with pytest.raises(UsageError, match="overlaps"):
        outputs.folder(os.path.join(images, "dump"), "--dump")
    with pytest.raises(UsageError, match="overlaps"):
        outputs.folder(str(root), "--dump")  # holds the input folder
    with pytest.raises(EdgeExportError):
        outputs.folder(model, "--dump")  # a file, and an input
    assert outputs.folder(str(root / "dump"), "--dump") == str(root / "dump")


def test_writes_are_whole_and_reported(inputs, capsys):
    root = inputs[0]
    lines = []
    outputs = RunOutputs(echo=lines.append)
    path = outputs.file(str(root / "r.json"), "--json")
    outputs.write_text(path, "{}\n")
    outputs.write_bytes(str(root / "b.bin"), b"\x00\x01")
    outputs.report()
    assert open(path).read() == "{}\n" and lines == ["wrote {}".format(path), "wrote {}".format(root / "b.bin")]
    assert not [n for n in os.listdir(str(root)) if n.endswith(".tmp")]


@pytest.mark.parametrize("name", ["rtsp://", "new/", ".", ".."])
def test_a_path_that_names_a_folder_is_not_an_output_file(tmp_path, monkeypatch, name):
    """Found by the fuzzer: `--json rtsp://` reached the rename as a file named ''."""
    import argparse

    from edgeexport.device.cli import output_file
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputFileError, match="name a file"):
        RunOutputs().file(name, "--json")
    with pytest.raises(argparse.ArgumentTypeError, match="name a file"):
        output_file(name)
