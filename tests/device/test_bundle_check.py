"""The bundle checked whole (edgeexport.device.bundle_check): every command that reads a bundle refuses a config,
labels file or graph that disagrees with model.json, and follows what a user tunes on purpose."""
import json
import os
import re
import shutil

import numpy as np
import pytest

from edgeexport.device.deepstream.bundle_check import check_bundle_whole, load_bundle
from edgeexport.device.errors import BundleMismatchError, InputFileError
from tests.conftest import SHAPES, export_quietly, make_model, run_cli


@pytest.fixture
def bundle(small_bundle, tmp_path):
    path = str(tmp_path / "bundle")
    shutil.copytree(small_bundle[0], path)
    return path


def edit(path, pattern, replacement):
    with open(path) as f:
        text = f.read()
    new = re.sub(pattern, replacement, text, flags=re.M)
    assert new != text, pattern
    with open(path, "w") as f:
        f.write(new)


def one_line_refusal(r, *words):
    assert r.returncode != 0, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_export_records_every_file_no_command_rewrites(bundle):
    meta = load_bundle(bundle).meta
    assert {"model.onnx", "labels.txt", "parity/inputs.npy", "parity/expected.npz"} <= set(meta.files)
    assert "infer_config.txt" not in meta.files  # build_engine rewrites it: checked by value
    assert len(meta.weights_sha256) == 64
    check = check_bundle_whole(bundle)
    assert check.differences == [] and check.notice() is None


@pytest.mark.parametrize("key,pattern,value", [
    ("offsets", r"^offsets=.*$", "offsets=0;0;0"),
    ("net-scale-factor", r"^net-scale-factor=.*$", "net-scale-factor=0.00392157"),
    ("model-color-format", r"^model-color-format=0$", "model-color-format=1"),
    ("parse-bbox-func-name", r"^parse-bbox-func-name=.*$", "parse-bbox-func-name=NvDsInferParseEdgeExportTopClass"),
    ("num-detected-classes", r"^num-detected-classes=3$", "num-detected-classes=2"),
    ("infer-dims", r"^infer-dims=.*$", "infer-dims=3;300;300"),
    ("cluster-mode", r"^cluster-mode=2$", "cluster-mode=4"),
])
def test_a_config_that_feeds_or_reads_the_network_differently_is_refused(bundle, key, pattern, value):
    edit(os.path.join(bundle, "infer_config.txt"), pattern, value)
    with pytest.raises(BundleMismatchError) as e:
        check_bundle_whole(bundle)
    assert key in str(e.value) and "infer_config.txt" in str(e.value)


def test_parity_checks_the_deployed_pipeline_not_the_onnx_alone(bundle):
    # parity used to compare model.onnx with the fixtures only, and said PASS with the offsets edited
    edit(os.path.join(bundle, "infer_config.txt"), r"^offsets=.*$", "offsets=0;0;0")
    r = run_cli(["-m", "edgeexport.parity", bundle, "--backend", "onnxruntime"])
    one_line_refusal(r, "offsets", "export wrote")


def test_emulate_refuses_renamed_labels_another_graph_and_a_null_model_json(bundle, small_bundle, tmp_path):
    clip = str(tmp_path / "frames")
    os.makedirs(clip)
    import cv2
    cv2.imwrite(os.path.join(clip, "a.png"), np.zeros((64, 64, 3), np.uint8))
    emulate = ["-m", "edgeexport.emulate", bundle, "--input", clip, "--no-progress"]

    os.rename(os.path.join(bundle, "labels.txt"), os.path.join(bundle, "labels.old"))
    one_line_refusal(run_cli(emulate), "labels.txt")
    os.rename(os.path.join(bundle, "labels.old"), os.path.join(bundle, "labels.txt"))

    with open(os.path.join(bundle, "labels.txt"), "w") as f:  # relabelled: every object would change name
        f.write("dog\ncat\nbird\n")
    one_line_refusal(run_cli(emulate), "labels.txt")
    shutil.copy2(os.path.join(small_bundle[0], "labels.txt"), os.path.join(bundle, "labels.txt"))

    other = str(tmp_path / "other")
    export_quietly(make_model(seed=1)[0], other, labels=SHAPES)
    shutil.copy2(os.path.join(other, "model.onnx"), os.path.join(bundle, "model.onnx"))
    one_line_refusal(run_cli(emulate), "model.onnx", "sha256")
    one_line_refusal(run_cli(["-m", "edgeexport.evaluate", bundle, "--backend", "onnxruntime", "--dataset",
                              "synthetic", "--synthetic-size", "2", "--no-progress"]), "model.onnx")
    shutil.copy2(os.path.join(small_bundle[0], "model.onnx"), os.path.join(bundle, "model.onnx"))

    with open(os.path.join(bundle, "model.json"), "w") as f:
        f.write("null")
    one_line_refusal(run_cli(emulate), "model.json")


def test_tuned_thresholds_are_listed_followed_and_kept_by_build_engine(bundle, tmp_path):
    cfg = os.path.join(bundle, "infer_config.txt")
    edit(cfg, r"^pre-cluster-threshold=.*$", "pre-cluster-threshold=0.6")
    with open(cfg, "a") as f:
        f.write("\n[class-attrs-1]\ntopk=7\n")
    check = check_bundle_whole(bundle)
    assert "pre-cluster-threshold 0.6 (export: 0.4)" in check.notice()
    assert "topk square=7 (export: 100)" in check.notice()
    assert [float(a.pre) for a in check.config.class_attrs] == pytest.approx([0.6] * 3)  # the config is followed
    frames = tmp_path / "frames"
    frames.mkdir()
    import cv2
    cv2.imwrite(str(frames / "a.png"), np.zeros((64, 64, 3), np.uint8))
    r = run_cli(["-m", "edgeexport.emulate", bundle, "--input", str(frames), "--no-progress"])
    assert r.returncode == 0 and r.stderr.startswith("note: infer_config.txt differs from the export: "
                                                     "pre-cluster-threshold 0.6 (export: 0.4)"), r.stderr
    # build_engine rewrites infer_config.txt for the engine it built: the user's values survive
    from edgeexport.device.tensorrt.build_engine import write_infer_config
    meta = load_bundle(bundle, check=False).meta
    write_infer_config(bundle, meta, "fp16", 0, 1, meta.onnx_file, None)
    again = check_bundle_whole(bundle)
    assert again.differences == check.differences
    assert "model.onnx_b1_gpu0_fp16.engine" in open(cfg).read()


def test_the_check_reads_untrusted_records_as_not_a_bundle(bundle):
    path = os.path.join(bundle, "model.json")
    d = json.load(open(path))
    d["files"] = {"../outside": "0" * 64}
    json.dump(d, open(path, "w"))
    with pytest.raises(InputFileError, match="not a path inside the bundle"):
        load_bundle(bundle)
    d["files"] = {"labels.txt": "f" * 64}
    json.dump(d, open(path, "w"))
    with pytest.raises(BundleMismatchError, match="labels.txt is not the file export wrote"):
        load_bundle(bundle)


def test_evaluate_refuses_another_models_checkpoint_and_a_set_of_other_classes(small_bundle, tmp_path):
    from edgeexport.model.checkpoint import save_checkpoint
    other_model, meta = make_model(seed=3)
    other = str(tmp_path / "other.pth")
    save_checkpoint(other, other_model, meta)
    base = ["-m", "edgeexport.evaluate", small_bundle[0], "--dataset", "synthetic", "--synthetic-size", "2",
            "--no-progress"]
    one_line_refusal(run_cli(base + ["--backend", "pytorch", "--model-path", other]), "not the model")

    import cv2
    os.makedirs(str(tmp_path / "images"))
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((64, 96, 3), np.uint8))
    ann = str(tmp_path / "ann.json")
    with open(ann, "w") as f:
        json.dump({"images": [{"id": 1, "file_name": "a.png", "width": 96, "height": 64}],
                   "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 20], "area": 400,
                                    "iscrowd": 0}],
                   "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}]}, f)
    r = run_cli(["-m", "edgeexport.evaluate", small_bundle[0], "--backend", "onnxruntime", "--dataset", "coco",
                 "--data-path", ann, "--images", str(tmp_path / "images"), "--no-progress"])
    one_line_refusal(r, "shares no class", "dog", "circle")


def test_without_glib_the_config_is_refused_by_strict_commands_and_noted_by_the_others(bundle, monkeypatch):
    """A GPU box without libglib (the device machine here has none) still builds and evaluates host rows; what
    reads the config as nvinfer does (parity, emulate, the DeepStream commands) says GLib is missing."""
    from edgeexport.device import keyfile
    from edgeexport.device.errors import BackendUnavailableError
    monkeypatch.setattr(keyfile, "available", lambda: False)
    with pytest.raises(BackendUnavailableError, match="libglib-2.0 not found"):
        load_bundle(bundle)
    loose = load_bundle(bundle, strict=False)
    assert loose.checked.config is None and "not checked against model.json" in loose.checked.notice()
    with open(os.path.join(bundle, "labels.txt"), "w") as f:  # the recorded files are checked all the same
        f.write("dog\ncat\nbird\n")
    with pytest.raises(BundleMismatchError, match="labels.txt"):
        load_bundle(bundle, strict=False)
