import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest

from edgeexport.device.errors import ExportError, OutputExistsError, ParityError
from edgeexport.device.meta import BundleMeta

from ..conftest import export_quietly, run_cli


def test_bundle_contents_and_metadata(small_bundle):
    path, result = small_bundle
    for name in ("model.onnx", "model.json", "labels.txt", "infer_config.txt", "app_config.txt",
                 "app_config_fps.txt", "README.md", "parity/inputs.npy", "parity/expected.npz",
                 "parity/report.json", "edgeexport/__init__.py", "edgeexport/parity.py", "edgeexport/build_engine.py",
                 "edgeexport/device/check/parity.py", "edgeexport/device/runners/base.py",
                 "jetson/setup.sh", "jetson/requirements.txt", "jetson/parser/Makefile",
                 "jetson/parser/nvdsparsebbox_edgeexport.cpp", "jetson/parser/host_include/nvdsinfer.h"):
        assert os.path.isfile(os.path.join(path, name)), name
    # the board's files as they are, never a build of them (the Jetson builds its own, where custom-lib-path points)
    assert not [f for _, _, files in os.walk(os.path.join(path, "jetson")) for f in files if f.endswith(".so")]
    assert "custom-lib-path=jetson/parser/libnvdsparsebbox_edgeexport.so" in open(
        os.path.join(path, "infer_config.txt")).read()
    meta = BundleMeta.load(os.path.join(path, "model.json"))
    data = open(os.path.join(path, "model.onnx"), "rb").read()
    assert meta.onnx_sha256 == hashlib.sha256(data).hexdigest()
    assert open(os.path.join(path, "labels.txt")).read().split("\n")[:3] == meta.model.labels
    props = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    assert json.loads(props["edgeexport.model_json"])["model"]["labels"] == meta.model.labels
    model = onnx.load_from_string(data)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["boxes", "scores"]
    dims = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output]
    assert dims == [[1, 3234, 4], [1, 3234, 3]]
    inputs = np.load(os.path.join(path, "parity", "inputs.npy"))
    expected = np.load(os.path.join(path, "parity", "expected.npz"))
    assert inputs.shape[1:] == (3, 320, 320) and expected["scores"].shape == (len(inputs), 3234, 3)
    report = result.parity.report
    assert report.ok and report.matched > 0
    assert report.raw["boxes"]["max_abs"] < 1e-4
    assert meta.written_by == __import__("edgeexport").__version__
    assert not os.path.exists(os.path.join(path, "edgeexport", "export")), "a host stage was shipped"


def test_export_bundle_leaves_autograd_as_it_found_it(small_checkpoint, tmp_path):
    # check_export once switched autograd off process-wide: a caller's training after an export then failed
    # ("element 0 of tensors does not require grad"), seen in CI as test_ssd_loss failing after the export tests
    import torch
    export_quietly(small_checkpoint, tmp_path / "bundle")
    assert torch.is_grad_enabled()


def test_export_cli_end_to_end_and_refuses_existing_bundle(small_checkpoint, tmp_path):
    out = tmp_path / "b"
    r = run_cli(["export.py", "--model-path", small_checkpoint, "--output-dir", str(out), "--layout", "top_class",
                 "--color", "bgr", "--dynamic-batch"])
    assert r.returncode == 0, r.stderr
    assert "export parity" in r.stdout and "PASS" in r.stdout and str(out) in r.stdout
    meta = BundleMeta.load(str(out / "model.json"))
    assert meta.layout == "top_class" and meta.color_format == "bgr" and meta.dynamic_batch
    r2 = run_cli(["export.py", "--model-path", small_checkpoint, "--output-dir", str(out)])
    assert r2.returncode == 2 and "--force" in r2.stderr and len(r2.stderr.strip().splitlines()) == 1
    r3 = run_cli(["-m", "edgeexport.export", "--model-path", small_checkpoint, "--output-dir", str(out), "--force"])
    assert r3.returncode == 0, r3.stderr
    assert BundleMeta.load(str(out / "model.json")).layout == "boxes_scores"


@pytest.mark.parametrize("case", ["missing", "corrupt", "pickle_code", "labels", "arch"])
def test_export_bad_inputs_one_line_nonzero_nothing_written(case, small_checkpoint, tmp_path):
    import torch
    src = str(tmp_path / "in.pth")
    extra = []
    if case == "missing":
        src = str(tmp_path / "nope.pth")
    elif case == "corrupt":
        open(src, "wb").write(b"\x00garbage" * 100)
    elif case == "pickle_code":
        torch.save({"model": {}, "x": os.system}, src)  # a global: must be refused, not resolved
    elif case == "labels":
        src, extra = small_checkpoint, ["--labels", "a", "b"]
    elif case == "arch":
        src, extra = small_checkpoint, ["--arch", "ssdlite320_mobilenet_v3_large"]
    out = tmp_path / "bundle"
    r = run_cli(["export.py", "--model-path", src, "--output-dir", str(out)] + extra)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr
    assert not out.exists() and os.listdir(str(tmp_path)) == (["in.pth"] if os.path.exists(src) and
                                                               src.startswith(str(tmp_path)) else [])


def test_flags_that_contradict_the_checkpoints_metadata_need_override(small_checkpoint, tmp_path):
    """A checkpoint that records its labels and normalisation is not relabelled or re-normalised by a flag unless
    the user says so: the bundle would name every object wrongly, or feed the network other pixels."""
    for extra, word in ((["--labels", "dog", "cat", "bird"], "labels"), (["--image-mean", "0.5", "0.5", "0.5"],
                                                                          "image_mean"),
                        (["--image-std", "0.5", "0.5", "0.5"], "image_std")):
        out = tmp_path / "b"
        r = run_cli(["export.py", "--model-path", small_checkpoint, "--output-dir", str(out)] + extra)
        assert r.returncode == 2 and word in r.stderr and "--override-metadata" in r.stderr, r.stderr
        assert not out.exists()
    # the same values as recorded are no contradiction; --override-metadata lets the flag win
    r = run_cli(["export.py", "--model-path", small_checkpoint, "--output-dir", str(tmp_path / "same"),
                 "--labels", "circle", "square", "triangle"])
    assert r.returncode == 0, r.stderr
    r = run_cli(["export.py", "--model-path", small_checkpoint, "--output-dir", str(tmp_path / "over"),
                 "--labels", "dog", "cat", "bird", "--override-metadata"])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "over" / "labels.txt").read_text().split() == ["dog", "cat", "bird"]


def test_unwritable_output_folder(small_checkpoint, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(str(ro), 0o500)
    try:
        if os.access(str(ro), os.W_OK):
            pytest.skip("running as a user who can write anywhere (root): permissions are not enforced")
        r = run_cli(["export.py", "--model-path", small_checkpoint, "--output-dir", str(ro / "bundle")])
        assert r.returncode == 2 and "cannot write" in r.stderr
    finally:
        os.chmod(str(ro), 0o700)


def test_unwritable_output_path_under_a_file(small_checkpoint, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_cli(["export.py", "--model-path", small_checkpoint, "--output-dir", str(blocker / "bundle")])
    assert r.returncode == 2 and "cannot write" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_failed_parity_leaves_nothing_and_force_keeps_old_bundle(small_checkpoint, small_bundle, tmp_path,
                                                                 monkeypatch):
    import shutil
    out = tmp_path / "bundle"
    shutil.copytree(small_bundle[0], str(out))
    before = sorted(os.listdir(str(out)))
    import edgeexport.device.check.compare as compare
    real = compare.compare_outputs

    def broken(expected, got, *a, **k):
        expected = dict(expected, boxes=expected["boxes"] + 0.05)  # the graph and the original now disagree
        return real(expected, got, *a, **k)
    monkeypatch.setattr("edgeexport.export.parity.compare_outputs", broken)
    with pytest.raises(ParityError):
        export_quietly(small_checkpoint, out, force=True)
    assert sorted(os.listdir(str(out))) == before
    assert sorted(os.listdir(str(tmp_path))) == ["bundle"], "a .partial folder was left behind"


@pytest.mark.parametrize("case", ["notes", "cwd", "parent", "file"])
def test_force_replaces_only_bundles(case, small_checkpoint, tmp_path, monkeypatch):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("my notes")
    target = {"notes": notes, "cwd": tmp_path / "work", "parent": tmp_path, "file": notes / "todo.txt"}[case]
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(str(tmp_path / "work"))
    with pytest.raises(OutputExistsError):
        export_quietly(small_checkpoint, target, force=True)
    assert (notes / "todo.txt").read_text() == "my notes" and (tmp_path / "work").is_dir()
    assert not [p for p in os.listdir(str(tmp_path)) if p.startswith(".")]


def test_export_fails_preflight_for_unsupported_opset(small_checkpoint, tmp_path):
    with pytest.raises(ExportError, match="opset 14"):
        export_quietly(small_checkpoint, tmp_path / "b", opset=14)
    assert not (tmp_path / "b").exists()


def test_mean_into_bias_reports_its_error(small_checkpoint, tmp_path):
    res = export_quietly(small_checkpoint, tmp_path / "b", fold="mean_into_bias")
    errs = res.parity.fold_error
    assert errs["mean_into_bias"]["scores"]["max_rel"] > 10 * errs["exact"]["scores"]["max_rel"]
    assert BundleMeta.load(str(tmp_path / "b" / "model.json")).offsets == [0, 0, 0]


def test_export_help_is_complete():
    r = run_cli(["export.py", "--help"])
    for flag in ("--model-path", "--output-dir", "--force", "--labels", "--color", "--fold", "--opset",
                 "--dynamic-batch", "--trt-version", "--precision", "--video"):
        assert flag in r.stdout


def test_efficient_nms_variant(small_checkpoint, tmp_path):
    from onnx import helper

    from edgeexport.device import keyfile
    out = tmp_path / "nms"
    res = export_quietly(small_checkpoint, out, layout="efficient_nms")
    assert res.parity.ok
    model = onnx.load(str(out / "model.onnx"))
    node = [n for n in model.graph.node if n.op_type == "EfficientNMS_TRT"]
    assert len(node) == 1 and node[0].domain == "TRT"
    attrs = {a.name: helper.get_attribute_value(a) for a in node[0].attribute}
    # the plugin keeps all it selects (its 5000-candidate cap): nvinfer's per-class topk (mode 4 too) then cuts
    assert attrs["max_output_boxes"] == 5000 and attrs["background_class"] == -1 and attrs["box_coding"] == 0
    assert abs(attrs["score_threshold"] - 0.4) < 1e-6 and abs(attrs["iou_threshold"] - 0.55) < 1e-6
    assert "class_agnostic" not in attrs  # unknown to TensorRT 8.2's plugin
    assert [o.name for o in model.graph.output] == ["num_detections", "detection_boxes", "detection_scores",
                                                    "detection_classes"]
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [6, 1, 1, 6]  # int32, float, float, int32
    before_nms = onnx.load(str(out / "parity" / "graph_before_nms.onnx"))
    assert [o.name for o in before_nms.graph.output] == ["boxes", "scores"]
    if keyfile.available():
        kf = keyfile.KeyFile(str(out / "infer_config.txt"))
        assert kf.integer("property", "cluster-mode") == 4 and kf.integer("class-attrs-all", "topk") == 100
        assert kf.string("property", "parse-bbox-func-name") == "NvDsInferParseEdgeExportNMS"
    r = run_cli(["-m", "edgeexport.parity", str(out), "--backend", "onnxruntime"])
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr


def test_efficient_nms_reference_follows_the_plugin_algorithm():
    from edgeexport.device.postprocess import efficient_nms_reference
    boxes = np.array([[0, 0, 0.5, 0.5], [0, 0, 0.5, 0.52], [0.6, 0.6, 0.9, 0.9]], np.float32)
    scores = np.array([[0.9, 0.1], [0.8, 0.85], [0.3, 0.2]], np.float32)
    num, b, s, c = efficient_nms_reference(boxes, scores, 0.25, 0.5, 5)
    assert num[0] == 3  # (0, class 0), (1, class 1) survive: NMS is per class; anchor 2 class 0 at 0.3
    assert s[:3].tolist() == pytest.approx([0.9, 0.85, 0.3]) and c[:3].tolist() == [0, 1, 0]
    assert (s[3:] == 0).all() and b.shape == (5, 4)
    num, _, _, _ = efficient_nms_reference(boxes, scores, 0.25, 0.5, 1)
    assert num[0] == 1


def test_simplifier_failure_warns_and_keeps_the_graph(monkeypatch, caplog):
    import onnxsim

    from edgeexport.export.onnx_graph import simplify

    def broken(model, *a, **k):
        raise RuntimeError("simplifier crashed")
    monkeypatch.setattr(onnxsim, "simplify", broken)
    proto = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
    with caplog.at_level("WARNING"):
        out, ok = simplify(proto)
    assert out is proto and ok is False and "keeping the unsimplified graph" in caplog.text


def test_an_interrupted_write_leaves_nothing_and_a_killed_one_is_swept(small_checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "bundle"

    def interrupted(dst):
        raise KeyboardInterrupt  # SIGTERM arrives as this too (edgeexport.device.cli.Terminated)
    monkeypatch.setattr("edgeexport.export.bundle.copy_device_side", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_quietly(small_checkpoint, out)
    assert os.listdir(str(tmp_path)) == []
    monkeypatch.undo()
    stale = tmp_path / ".bundle.k1lled00.partial"  # what a SIGKILL inside the write leaves
    stale.mkdir()
    (stale / "model.onnx").write_bytes(b"half")
    export_quietly(small_checkpoint, out)
    assert sorted(os.listdir(str(tmp_path))) == ["bundle"]


def test_sigterm_while_the_bundle_is_written_leaves_a_whole_bundle_or_nothing(small_checkpoint, tmp_path):
    """SIGTERM the moment export prints its parity report (it then writes the bundle): either the bundle made it
    whole, or the process exits 130 with nothing left. (The KeyboardInterrupt test above forces the second case.)"""
    import signal
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=repo, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "export.py", "--model-path", small_checkpoint, "--output-dir",
                             str(tmp_path / "b")], cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)
    for line in proc.stdout:
        if line.startswith("export parity"):
            proc.send_signal(signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), err
    if proc.returncode == 130:
        assert err.strip().splitlines()[-1] == "terminated" and os.listdir(str(tmp_path)) == []
    else:
        assert os.listdir(str(tmp_path)) == ["b"] and os.path.isfile(str(tmp_path / "b" / "model.json"))


def test_preprocessing_is_a_report_unless_a_minimum_is_asked_for(small_checkpoint, tmp_path, monkeypatch, capsys):
    # torchvision's float resize vs nvinfer's 8-bit stretch is DeepStream's property, not an export error:
    # by default a low agreement is a warning line and the bundle is written; --strict-preprocessing or an explicit
    # --preprocess-min-agreement makes it a failure that writes nothing
    import edgeexport.export.parity as parity
    from edgeexport.export import cli
    real = parity.preprocessing_parity

    def disagreeing(*a, **k):
        return dict(real(*a, **k), agreement=0.5)
    monkeypatch.setattr(parity, "preprocessing_parity", disagreeing)

    def export(name, *extra):
        args = cli.get_args_parser().parse_args(["--model-path", small_checkpoint, "--output-dir",
                                                 str(tmp_path / name)] + list(extra))
        return cli.main(args)
    assert export("default") == 0 and os.path.isfile(str(tmp_path / "default" / "model.onnx"))
    assert "warning: torchvision's and nvinfer's preprocessing agree on 50.0% of detections" in capsys.readouterr().out
    for name, extra in (("strict", ["--strict-preprocessing"]), ("minimum", ["--preprocess-min-agreement", "0.6"])):
        with pytest.raises(ParityError, match="preprocessing parity 50.0% is below the minimum"):
            export(name, *extra)
        assert not os.path.exists(str(tmp_path / name))
    assert export("low-minimum", "--preprocess-min-agreement", "0.4") == 0
    assert "warning" not in capsys.readouterr().out
    assert sorted(os.listdir(str(tmp_path))) == ["default", "low-minimum"]


def test_force_replaces_the_projects_files_keeps_the_users_and_never_the_input(small_checkpoint, tmp_path):
    """--force replaces what export and the device side wrote (model.json's manifest; engines, configs,
    the built parser) and moves the user's own files into the new bundle; a checkpoint inside the bundle it
    would replace, or a user's file where the new bundle writes one of that name, is refused before any work."""
    out = tmp_path / "bundle"
    assert run_cli(["export.py", "--model-path", small_checkpoint, "--output-dir", str(out)]).returncode == 0
    manifest = json.loads((out / "model.json").read_text())["manifest"]
    assert "model.onnx" in manifest and "model.json" in manifest and "infer_config.txt" in manifest
    (out / "notes.txt").write_text("mine")
    (out / "my_clips").mkdir()
    (out / "my_clips" / "a.mp4").write_bytes(b"clip")
    (out / "model.onnx_b1_gpu0_fp16.engine").write_bytes(b"stale engine")
    r = run_cli(["export.py", "--model-path", small_checkpoint, "--output-dir", str(out), "--force"])
    assert r.returncode == 0, r.stderr
    assert (out / "notes.txt").read_text() == "mine" and (out / "my_clips" / "a.mp4").read_bytes() == b"clip"
    assert not (out / "model.onnx_b1_gpu0_fp16.engine").exists()  # the device side's: replaced with the bundle
    inside = out / "model.pth"
    shutil.copy(small_checkpoint, str(inside))
    r = run_cli(["export.py", "--model-path", str(inside), "--output-dir", str(out), "--force"])
    assert r.returncode == 2 and "inside the bundle" in r.stderr and inside.exists(), r.stderr
    inside.unlink()
    (out / "README.md").unlink()
    (out / "README.md").write_text("my own readme")  # a file of the user's where export writes one
    data = json.loads((out / "model.json").read_text())
    data["manifest"].remove("README.md")
    (out / "model.json").write_text(json.dumps(data))
    r = run_cli(["export.py", "--model-path", small_checkpoint, "--output-dir", str(out), "--force"])
    assert r.returncode == 2 and "README.md of yours" in r.stderr, r.stderr
    assert (out / "README.md").read_text() == "my own readme"
