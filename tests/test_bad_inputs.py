"""Every command line, fed a corpus of bad inputs generated here. For each case: a non-zero exit, no Python
traceback, exactly one line on stderr that names the file (or flag) and the problem, nothing left where the
output would go, and a hostile pickle never runs.

The commands run in this process through the same ``run_cli`` a ``python -m`` run uses (fast: torch loads once);
``test_real_entry_points`` runs one case of each command as a real subprocess, console scripts included. The
device commands run against the TensorRT double. Set EDGEEXPORT_BAD_INPUT_TABLE=FILE to write the table.
"""
import os
import subprocess
import sys

import pytest

from .bad_input_corpus import CLI_MODULES, engine_double, invoke, make_corpus
from .conftest import REPO
from .conftest import run_cli as run_subprocess


@pytest.fixture(scope="module")
def corpus(small_checkpoint, small_bundle, tmp_path_factory):
    return make_corpus(small_checkpoint, small_bundle, tmp_path_factory.mktemp("corpus"))


# (id, command, argv with {placeholders} from the corpus, words the one error line must hold, output to watch)
X = "{root}/out/x"
CASES = [
    # --- export: checkpoints that are not checkpoints
    ("export-missing", "export", ["--model-path", "{root}/nope.pth", "--output-dir", X], ["nope.pth", "not found"]),
    ("export-empty", "export", ["--model-path", "{empty.pth}", "--output-dir", X], ["empty.pth", "checkpoint"]),
    ("export-folder", "export", ["--model-path", "{folder.pth}", "--output-dir", X], ["folder.pth", "folder"]),
    ("export-text", "export", ["--model-path", "{text.pth}", "--output-dir", X], ["text.pth", "checkpoint"]),
    ("export-trunc5000", "export", ["--model-path", "{trunc5000.pth}", "--output-dir", X],
     ["trunc5000.pth", "checkpoint"]),
    ("export-trunchalf", "export", ["--model-path", "{trunchalf.pth}", "--output-dir", X],
     ["trunchalf.pth", "checkpoint"]),
    ("export-trunclast", "export", ["--model-path", "{trunclast.pth}", "--output-dir", X],
     ["trunclast.pth", "checkpoint"]),
    ("export-flipped", "export", ["--model-path", "{flipped.pth}", "--output-dir", X], ["flipped.pth", "CRC"]),
    ("export-wrongzip", "export", ["--model-path", "{wrongzip.pth}", "--output-dir", X], ["wrongzip.pth", "checkpoint"]),
    ("export-hostile", "export", ["--model-path", "{hostile.pth}", "--output-dir", X],
     ["hostile.pth", "Python objects"]),
    ("export-classifier", "export", ["--model-path", "{classifier.pth}", "--labels", "a", "b", "--output-dir", X],
     ["classifier.pth", "not an SSDLite"]),
    ("export-list", "export", ["--model-path", "{list.pth}", "--output-dir", X], ["list.pth", "not a detector"]),
    ("export-labels-contradict", "export", ["--model-path", "{good}", "--labels", "a", "b", "--output-dir", X],
     ["model.pth", "contradict", "--override-metadata"]),
    ("export-labels-mismatch", "export", ["--model-path", "{good}", "--labels", "a", "b", "--override-metadata",
                                          "--output-dir", X], ["model.pth", "head predicts 3"]),
    ("export-other-arch", "export", ["--model-path", "{good}", "--arch", "ssdlite320_mobilenet_v3_large",
                                     "--override-metadata", "--output-dir", X], ["model.pth", "does not match"]),
    ("export-bad-label", "export", ["--model-path", "{good}", "--labels", "a;b", "c", "d", "--output-dir", X],
     ["model.pth", "labels"]),
    ("export-labels-file-empty", "export", ["--model-path", "{good}", "--labels-file", "{labels_empty.txt}",
                                            "--output-dir", X], ["labels_empty.txt", "no class names"]),
    # --- export: flag values
    ("export-batch-0", "export", ["--model-path", "{good}", "--batch-size", "0", "--output-dir", X],
     ["--batch-size", "from 1 to 4096"]),
    ("export-batch-neg", "export", ["--model-path", "{good}", "--batch-size", "-1", "--output-dir", X],
     ["--batch-size", "from 1 to 4096"]),
    ("export-opset-0", "export", ["--model-path", "{good}", "--opset", "0", "--output-dir", X], ["--opset"]),
    ("export-topk-0", "export", ["--model-path", "{good}", "--topk", "0", "--output-dir", X], ["--topk", "from 1 to 5000"]),
    ("export-threshold-2", "export", ["--model-path", "{good}", "--pre-cluster-threshold", "2", "--output-dir", X],
     ["--pre-cluster-threshold", "[0, 1]"]),
    ("export-iou-neg", "export", ["--model-path", "{good}", "--nms-iou-threshold", "-0.5", "--output-dir", X],
     ["--nms-iou-threshold", "[0, 1]"]),
    ("export-arch-unknown", "export", ["--model-path", "{good}", "--arch", "resnet50", "--output-dir", X],
     ["--arch", "invalid choice"]),
    ("export-labels-empty", "export", ["--model-path", "{good}", "--labels", "--output-dir", X], ["--labels"]),
    ("export-std-0", "export", ["--model-path", "{good}", "--image-std", "0", "0", "0", "--output-dir", X],
     ["--image-std", "> 0 and <= 1"]),
    # --- export: outputs that would lose data or cannot be written, and bad videos
    ("export-out-under-file", "export", ["--model-path", "{good}", "--output-dir", "{afile}/bundle"],
     ["afile", "file"]),
    ("export-force-notes", "export", ["--model-path", "{good}", "--output-dir", "{notes}", "--force"],
     ["notes", "no edgeexport bundle"]),
    ("export-force-cwd", "export", ["--model-path", "{good}", "--output-dir", ".", "--force"], ["working directory"]),
    ("export-force-parent", "export", ["--model-path", "{good}", "--output-dir", "..", "--force"],
     ["working directory"]),
    ("export-video-corrupt", "export", ["--model-path", "{good}", "--video", "{corrupt.mp4}", "--output-dir", X],
     ["corrupt.mp4", "video"]),
    ("export-video-missing", "export", ["--model-path", "{good}", "--video", "{root}/none.mp4", "--output-dir", X],
     ["none.mp4", "not found"]),
    # --- train
    ("train-epochs-0", "train", ["--epochs", "0", "--output-dir", X], ["--epochs", "from 1 to 1000000"]),
    ("train-epochs-neg", "train", ["--epochs", "-3", "--output-dir", X], ["--epochs", "from 1 to 1000000"]),
    ("train-batch-0", "train", ["-b", "0", "--output-dir", X], ["--batch-size", "from 1 to 4096"]),
    ("train-eval-every-0", "train", ["--eval-every", "0", "--output-dir", X], ["--eval-every", "from 1 to 1000000"]),
    ("train-workers-neg", "train", ["--workers", "-1", "--output-dir", X], ["--workers", "from 0 to 512"]),
    ("train-lr-nan", "train", ["--lr", "nan", "--output-dir", X], ["--lr", "finite"]),
    ("train-lr-0", "train", ["--lr", "0", "--output-dir", X], ["--lr", "> 0"]),
    ("train-input-size-0", "train", ["--input-size", "0", "0", "--output-dir", X], ["--input-size", "from 32 to 4096"]),
    ("train-std-0", "train", ["--image-std", "0", "0", "0", "--output-dir", X], ["--image-std", "> 0 and <= 1"]),
    ("train-arch-unknown", "train", ["--arch", "yolo", "--output-dir", X], ["--arch", "invalid choice"]),
    ("train-compile-mode-alone", "train", ["--compile-mode", "reduce-overhead", "--output-dir", X],
     ["--compile-mode reduce-overhead", "pass --compile"]),
    ("train-compile-mode-unknown", "train", ["--compile", "--compile-mode", "max", "--output-dir", X],
     ["--compile-mode", "invalid choice"]),
    ("train-smaller-than-batch", "train", ["--synthetic-train-size", "4", "-b", "8", "--output-dir", X],
     ["4 images", "fewer than one batch"]),
    ("train-voc-corrupt-image", "train", ["--dataset", "voc", "--data-path", "{voc_corrupt}", "--val-data-path",
                                          "{voc_corrupt}", "--labels", "circle", "-b", "2", "--epochs", "1",
                                          "--workers", "0", "--no-progress", "--output-dir", X],
     ["bad.jpg", "cannot read image"]),
    ("train-voc-zero-image", "train", ["--dataset", "voc", "--data-path", "{voc_zero}", "--val-data-path",
                                       "{voc_zero}", "--output-dir", X], ["bad.jpg", "cannot read image"]),
    ("train-coco-nowidth-zero", "train", ["--dataset", "coco", "--data-path", "{coco}", "--ann-file",
                                          "{coco}/nowidth.json", "--val-ann-file", "{coco}/nowidth.json",
                                          "--output-dir", X], ["zero.jpg", "cannot read image"]),
    ("train-coco-not-json", "train", ["--dataset", "coco", "--data-path", "{coco}", "--ann-file", "{text.pth}",
                                      "--val-ann-file", "{text.pth}", "--output-dir", X], ["text.pth", "JSON"]),
    ("train-voc-missing", "train", ["--dataset", "voc", "--data-path", "{root}/novoc", "--val-split", "val",
                                    "--output-dir", X], ["novoc", "not a VOC folder"]),
    ("train-resume-hostile", "train", ["--resume", "{hostile.pth}", "--output-dir", X],
     ["hostile.pth", "Python objects"]),
    ("train-resume-trunc", "train", ["--resume", "{trunc5000.pth}", "--output-dir", X], ["trunc5000.pth", "checkpoint"]),
    ("train-resume-no-state", "train", ["--resume", "{good}", "--output-dir", X], ["model.pth", "train_state"]),
    ("train-out-under-file", "train", ["--output-dir", "{afile}/run"], ["afile", "file"]),
    # --- parity (ONNX Runtime; TensorRT through the double)
    ("parity-missing", "parity", ["{root}/nobundle", "--backend", "onnxruntime"], ["nobundle", "model.json"]),
    ("parity-onnx-trunc", "parity", ["{b_onnx_trunc}", "--backend", "onnxruntime"], ["model.onnx", "sha256"]),
    ("parity-onnx-missing", "parity", ["{b_onnx_missing}", "--backend", "onnxruntime"], ["model.onnx", "missing"]),
    ("parity-json-invalid", "parity", ["{b_json_invalid}", "--backend", "onnxruntime"], ["model.json", "JSON"]),
    ("parity-json-future", "parity", ["{b_json_future}", "--backend", "onnxruntime"],
     ["model.json", "format 99", "9.9.0"]),
    ("parity-no-fixtures", "parity", ["{b_no_fixtures}", "--backend", "onnxruntime"], ["parity", "fixtures"]),
    ("parity-wrong-shape", "parity", ["{b_wrong_shape}", "--backend", "onnxruntime"], ["model.onnx", "shape"]),
    ("parity-threshold-2", "parity", ["{bundle}", "--pre-cluster-threshold", "2"],
     ["--pre-cluster-threshold", "[0, 1]"]),
    ("parity-json-under-file", "parity", ["{bundle}", "--backend", "onnxruntime", "--json", "{afile}/r.json"],
     ["afile"]),
    ("parity-trt-no-engine", "parity", ["{bundle}", "--backend", "tensorrt"], ["engine", "build_engine"]),
    ("parity-trt-empty-engine", "parity", ["{b_engine_empty}", "--backend", "tensorrt"], ["engine"]),
    # --- build_engine (the TensorRT double)
    ("build-missing", "build_engine", ["{root}/nobundle"], ["nobundle", "not found"]),
    ("build-onnx-trunc", "build_engine", ["{b_onnx_trunc}"], ["model.onnx", "sha256"]),
    ("build-json-future", "build_engine", ["{b_json_future}"], ["model.json", "format 99"]),
    ("build-batch-0", "build_engine", ["{bundle}", "--batch", "0"], ["--batch", "from 1 to 4096"]),
    ("build-workspace-0", "build_engine", ["{bundle}", "--workspace", "0"], ["--workspace", "from 1 to 1048576"]),
    ("build-dla-neg", "build_engine", ["{bundle}", "--dla-core", "-1"], ["--dla-core", "from 0 to 1"]),
    ("build-int8-no-images", "build_engine", ["{bundle}", "--int8"], ["--calib-images"]),
    ("build-wrong-shape", "build_engine", ["{b_wrong_shape}"], ["model.json"]),
    # --- deepstream_config
    ("dsconfig-missing", "deepstream_config", ["{root}/nobundle", "--source", "{clip.mp4}"], ["nobundle"]),
    ("dsconfig-json-future", "deepstream_config", ["{b_json_future}", "--source", "{clip.mp4}"], ["format 99"]),
    ("dsconfig-source-missing", "deepstream_config", ["{bundle}", "--source", "{root}/none.mp4"], ["none.mp4"]),
    ("dsconfig-camera-mode", "deepstream_config", ["{bundle}", "--source", "/dev/video0:0x0"], ["camera mode"]),
    ("dsconfig-broker", "deepstream_config", ["{bundle}", "--source", "{clip.mp4}", "--sink", "msgbroker",
                                              "--broker", "mqtt:/x"], ["--broker"]),
    ("dsconfig-rtsp-port-0", "deepstream_config", ["{bundle}", "--source", "{clip.mp4}", "--rtsp-port", "0"],
     ["--rtsp-port", "a TCP port"]),
    ("dsconfig-batch", "deepstream_config", ["{bundle}", "--source", "{clip.mp4}", "--source", "{clip.mp4}"],
     ["--batch-size 2"]),
    # --- the pyds app (stops before GStreamer: no pyds here)
    ("dsapp-missing", "deepstream_app", ["{root}/nobundle", "--source", "{clip.mp4}"], ["nobundle"]),
    ("dsapp-source-missing", "deepstream_app", ["{bundle}", "--source", "{root}/none.mp4"], ["none.mp4"]),
    ("dsapp-dump-n", "deepstream_app", ["{bundle}", "--source", "{clip.mp4}", "--dump", "{root}/d", "-1"],
     ["--dump"]),
    ("dsapp-coco-no-images", "deepstream_app", ["{bundle}", "--source", "{clip.mp4}", "--coco-out",
                                                "{root}/out/c.json"], ["--coco-out"]),
    # --- emulate
    ("emulate-missing", "emulate", ["{root}/nobundle", "--input", "{clip.mp4}"], ["nobundle"]),
    ("emulate-input-missing", "emulate", ["{bundle}", "--input", "{root}/none.mp4"], ["none.mp4", "not found"]),
    ("emulate-input-corrupt", "emulate", ["{bundle}", "--input", "{corrupt.mp4}"], ["corrupt.mp4", "video"]),
    ("emulate-out-is-input", "emulate", ["{bundle}", "--input", "{clip_copy.mp4}", "--out", "{clip_copy.mp4}"],
     ["clip_copy.mp4", "destroy the input"]),
    ("emulate-max-frames-neg", "emulate", ["{bundle}", "--input", "{clip.mp4}", "--max-frames", "-1"],
     ["--max-frames", ">= 0"]),
    ("emulate-out-under-file", "emulate", ["{bundle}", "--input", "{clip.mp4}", "--out", "{afile}/a.mp4"],
     ["afile"]),
    ("emulate-no-labels", "emulate", ["{b_no_labels}", "--input", "{clip.mp4}"], ["labels.txt"]),
    ("emulate-config-corrupt", "emulate", ["{b_cfg_corrupt}", "--input", "{clip.mp4}"], ["infer_config.txt"]),
    # --- evaluate
    ("eval-missing", "evaluate", ["{root}/nobundle"], ["nobundle"]),
    ("eval-no-validation-set", "evaluate", ["{bundle}"], ["--dataset"]),
    ("eval-pytorch-no-model", "evaluate", ["{bundle}", "--dataset", "synthetic", "--backend", "pytorch"],
     ["--model-path"]),
    ("eval-pytorch-trunc", "evaluate", ["{bundle}", "--dataset", "synthetic", "--backend", "pytorch",
                                        "--model-path", "{trunc5000.pth}"], ["trunc5000.pth"]),
    ("eval-voc-missing", "evaluate", ["{bundle}", "--dataset", "voc", "--data-path", "{root}/novoc"],
     ["novoc", "VOC"]),
    ("eval-coco-not-json", "evaluate", ["{bundle}", "--dataset", "coco", "--data-path", "{text.pth}"],
     ["text.pth"]),
    ("eval-results-not-json", "evaluate", ["{bundle}", "--dataset", "synthetic", "--backend", "deepstream",
                                           "--results", "{text.pth}"], ["text.pth"]),
    ("eval-deepstream-no-results", "evaluate", ["{bundle}", "--dataset", "synthetic", "--backend", "deepstream"],
     ["--results"]),
    ("eval-max-images-0", "evaluate", ["{bundle}", "--max-images", "0"], ["--max-images", "from 1 to 1000000"]),
    ("eval-json-under-file", "evaluate", ["{bundle}", "--dataset", "synthetic", "--json", "{afile}/e.json"],
     ["afile"]),
    ("eval-image-size-10", "evaluate", ["{bundle}", "--dataset", "synthetic", "--synthetic-image-size", "10", "10"],
     ["--synthetic-image-size", "from 32 to 4096"]),
    # --- make_clip
    ("clip-size-0", "make_clip", ["{root}/out/c.mp4", "--size", "0", "0"], ["--size", "from 64 to 4096"]),
    ("clip-fps-0", "make_clip", ["{root}/out/c.mp4", "--fps", "0"], ["--fps", "from 1 to 240"]),
    ("clip-seconds-neg", "make_clip", ["{root}/out/c.mp4", "--seconds", "-1"], ["--seconds", "more than 0"]),
    ("clip-under-file", "make_clip", ["{afile}/c.mp4"], ["afile"]),
    ("clip-is-folder", "make_clip", ["{notes}"], ["notes", "folder"]),
    # --- benchmarks
    ("trt-fps-iterations-0", "trt_fps", ["{bundle}", "--iterations", "0"], ["--iterations", "from 1 to 1000000"]),
    ("trt-fps-missing", "trt_fps", ["{root}/nobundle"], ["nobundle"]),
    ("parser-fps-iterations-0", "parser_fps", ["--iterations", "0"], ["--iterations", "from 1 to 1000000"]),
    ("parser-fps-head-0", "parser_fps", ["--heads", "0x3"], ["--heads", "ANCHORSxCLASSES"]),
    ("ds-perf-missing", "deepstream_perf", ["{root}/none.log"], ["none.log"]),
    ("ds-perf-no-perf", "deepstream_perf", ["{text.pth}"], ["text.pth", "PERF"]),
    ("host-fps-iters-0", "host_fps", ["--model-path", "{good}", "--iters", "0"], ["--iters", "from 1 to 1000000"]),
    ("host-fps-trunc", "host_fps", ["--model-path", "{trunc5000.pth}"], ["trunc5000.pth", "checkpoint"]),
    ("fp16-missing", "fp16_numerics", ["--model-path", "{root}/nope.pth"], ["nope.pth", "not found"]),
    # --- flags unbounded or untyped (bounded by the shared types of edgeexport.device.cli, --device checked by torch)
    ("train-seed-neg", "train", ["--seed", "-1", "--output-dir", X], ["--seed", "a seed from 0"]),
    ("train-device-bogus", "train", ["--device", "bogus", "--output-dir", X], ["--device", "available here: cpu"]),
    ("train-device-absent-gpu", "train", ["--device", "cuda:63", "--output-dir", X], ["--device", "available here"]),
    ("clip-seed-neg", "make_clip", ["{root}/out/c.mp4", "--seed", "-1"], ["--seed", "a seed from 0"]),
    ("clip-seconds-huge", "make_clip", ["{root}/out/c.mp4", "--seconds", "1e12"], ["--seconds", "at most 3600"]),
    ("clip-fps-huge", "make_clip", ["{root}/out/c.mp4", "--fps", "1000000000"], ["--fps", "from 1 to 240"]),
    ("clip-frames-huge", "make_clip", ["{root}/out/c.mp4", "--seconds", "3600", "--fps", "240"],
     ["864000 frames", "at most 36000"]),
    ("voc-size-huge", "make_voc", ["{root}/out/voc", "--size", "100000", "100000"], ["--size", "to 4096"]),
    ("voc-seed-neg", "make_voc", ["{root}/out/voc", "--seed", "-1"], ["--seed", "a seed from 0"]),
    ("voc-count-huge", "make_voc", ["{root}/out/voc", "--train", "999999999999"], ["--train", "to 1000000"]),
    ("host-fps-batch-huge", "host_fps", ["--batch-sizes", "100000"], ["--batch-sizes", "from 1 to 4096"]),
    ("host-fps-device-bogus", "host_fps", ["--device", "bogus"], ["--device", "not a torch device"]),
    ("host-fps-arch-bogus", "host_fps", ["--arch", "bogus"], ["--arch", "invalid choice"]),
    ("even-crop-size-huge", "even_crop", ["{bundle}", "--synthetic-size", "999999999"],
     ["--synthetic-size", "to 1000000"]),
    ("even-crop-seed-neg", "even_crop", ["{bundle}", "--seed", "-1"], ["--seed", "a seed from 0"]),
    ("train-speed-device-bogus", "train_speed", ["--device", "bogus"], ["--device", "not a torch device"]),
    ("train-speed-arch-bogus", "train_speed", ["--arch", "bogus"], ["--arch", "invalid choice"]),
    ("export-topk-huge", "export", ["--model-path", "{good}", "--topk", "999999999999", "--output-dir", X],
     ["--topk", "from 1 to 5000"]),
    ("export-std-huge", "export", ["--model-path", "{good}", "--image-std", "1e30", "1", "1", "--output-dir", X],
     ["--image-std", "<= 1"]),
    ("export-opset-7", "export", ["--model-path", "{good}", "--opset", "7", "--output-dir", X],
     ["--opset", "from 13 to 17"]),
    ("eval-seed-neg", "evaluate", ["{bundle}", "--dataset", "synthetic", "--seed", "-1"], ["--seed", "a seed from 0"]),
    # --- bundle metadata read field by field (edgeexport.device.meta.SCHEMA), by every command that reads a bundle
    ("emulate-json-nan", "emulate", ["{b_json_nan_offsets}", "--input", "{clip.mp4}"], ["deploy.offsets"]),
    ("evaluate-json-opset-string", "evaluate", ["{b_json_opset_string}", "--dataset", "synthetic"], ["deploy.opset"]),
    ("parity-json-layout", "parity", ["{b_json_layout}", "--backend", "onnxruntime"], ["layout"]),
    ("dsconfig-json-onnx-escape", "deepstream_config", ["{b_json_onnx_escape}", "--source", "{clip.mp4}"],
     ["onnx_file"]),
    ("build-json-onnx-absolute", "build_engine", ["{b_json_onnx_absolute}"], ["onnx_file"]),
    # --- outputs never clobber what is not the command's own
    ("clip-truth-not-ours", "make_clip", ["{notes}/todo.mp4"], ["todo.json", "not a clip's ground truth"]),
    ("voc-into-a-dataset", "make_voc", ["{notes}"], ["notes", "not empty"]),
    ("train-speed-json-folder", "train_speed", ["--json", "{notes}"], ["--json", "is a folder"]),
    ("host-fps-json-folder", "host_fps", ["--json", "{notes}"], ["--json", "is a folder"]),
    ("parser-fps-json-under-file", "parser_fps", ["--json", "{afile}/p.json"], ["--json", "which is a file"]),
    # --- found by the fuzzers (tests/test_fuzz_cli.py), closed by the output policy (edgeexport/device/outputs.py)
    ("ds-perf-json-url", "deepstream_perf", ["{text.pth}", "--json", "rtsp://"], ["--json", "name a file"]),
    ("eval-json-name-too-long", "evaluate", ["{bundle}", "--dataset", "synthetic", "--json",
                                             "{root}/out/" + "x" * 240 + ".json"], ["at most 231"]),
    ("fp16-json-is-the-model", "fp16_numerics", ["--model-path", "{good}", "--json", "{good}"],
     ["destroy the input"]),
    ("emulate-json-inside-input", "emulate", ["{bundle}", "--input", "{notes}", "--json", "{notes}/d.json"],
     ["lies inside"]),
    ("eval-json-inside-dataset", "evaluate", ["{bundle}", "--dataset", "voc", "--data-path", "{voc_corrupt}",
                                              "--json", "{voc_corrupt}/e.json"], ["lies inside"]),
    ("host-fps-json-is-the-model", "host_fps", ["--model-path", "{good}", "--json", "{good}"], ["destroy the input"]),
    ("build-timing-cache-parent", "build_engine", ["{bundle}", "--timing-cache", ".."], ["--timing-cache", "folder"]),
    ("build-timing-cache-is-the-graph", "build_engine", ["{bundle}", "--timing-cache", "{bundle}/model.onnx"],
     ["destroy the input"]),
    ("train-out-inside-dataset", "train", ["--dataset", "voc", "--data-path", "{voc_corrupt}", "--output-dir",
                                           "{voc_corrupt}/run"], ["--output-dir", "overlaps"]),
]
TABLE = []


def _fill(argv, corpus):
    import re
    return [re.sub(r"\{([^{}]+)\}", lambda m: corpus[m.group(1)], a) for a in argv]


def _listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else None


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, corpus, monkeypatch):
    name, cli, argv, words = case
    monkeypatch.chdir(corpus["cwd"])
    engine_double(monkeypatch)
    watched = [corpus["root"], os.path.join(corpus["root"], "out"), corpus["bundle"], corpus["notes"],
               corpus["cwd"]] + [corpus[k] for k in corpus if k.startswith("b_")]
    before = {w: _listing(w) for w in watched}
    code, out, err, escaped = invoke(cli, _fill(argv, corpus))
    lines = [line for line in err.splitlines() if line.strip()]
    TABLE.append((name, cli, " ".join(argv), code, lines[0] if len(lines) == 1 else repr(lines)))
    assert escaped is None, "a traceback escaped:\n" + escaped
    assert code not in (0, 1), "expected a bad-input exit code, got {} (stdout: {})".format(code, out[-300:])
    assert len(lines) == 1, "expected one line on stderr, got:\n" + err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], "{!r} not in the message {!r}".format(word, lines[0])
    assert {w: _listing(w) for w in watched} == before, "the case left something behind"
    assert not os.path.exists(corpus["marker"]), "the hostile pickle ran"


def test_table_of_cases():
    """Every command has cases; with EDGEEXPORT_BAD_INPUT_TABLE set, the table of this run is written there."""
    assert set(c[1] for c in CASES) == set(CLI_MODULES)
    out = os.environ.get("EDGEEXPORT_BAD_INPUT_TABLE")
    if out and TABLE:
        rows = ["| case | command | arguments | exit | stderr |", "|---|---|---|---|---|"]
        rows += ["| {} | {} | `{}` | {} | {} |".format(n, c, a.replace("|", "\\|"), code, msg.replace("|", "\\|"))
                 for n, c, a, code, msg in TABLE]
        open(out, "w").write("\n".join(rows) + "\n")


SUBPROCESS_CASES = [
    (["export.py", "--model-path", "{trunc5000.pth}", "--output-dir", X], "trunc5000.pth"),
    (["-m", "edgeexport.export", "--model-path", "{hostile.pth}", "--output-dir", X], "hostile.pth"),
    (["-m", "edgeexport.train", "--epochs", "0"], "--epochs"),
    (["-m", "training.train", "-b", "0"], "--batch-size"),
    (["-m", "edgeexport.parity", "{b_json_future}", "--backend", "onnxruntime"], "format 99"),
    (["-m", "edgeexport.build_engine", "{b_onnx_trunc}"], "sha256"),
    (["-m", "edgeexport.deepstream_config", "{bundle}", "--source", "{root}/none.mp4"], "none.mp4"),
    (["-m", "edgeexport.emulate", "{bundle}", "--input", "{corrupt.mp4}"], "corrupt.mp4"),
    (["-m", "edgeexport.emulate.make_clip", "{root}/out/c.mp4", "--size", "0", "0"], "--size"),
    (["benchmarks/deepstream_perf.py", "{text.pth}"], "PERF"),
]


@pytest.mark.parametrize("argv,word", SUBPROCESS_CASES, ids=[" ".join(c[0][:2]) for c in SUBPROCESS_CASES])
def test_real_entry_points(argv, word, corpus):
    r = run_subprocess(_fill(argv, corpus))
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and word in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert not os.path.exists(corpus["marker"])


@pytest.mark.parametrize("script", ["edgeexport-export", "edgeexport-train", "edgeexport-parity",
                                    "edgeexport-build-engine", "edgeexport-emulate", "edgeexport-deepstream-config",
                                    "edgeexport-deepstream-app", "edgeexport-evaluate"])
def test_console_scripts_answer_help_and_bad_input(script):
    exe = os.path.join(os.path.dirname(sys.executable), script)
    r = subprocess.run([exe, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=120)
    assert r.returncode == 0 and "usage" in r.stdout, r.stderr
    r = subprocess.run([exe, "x", "--input", "x", "--model-path", "x", "--no-such-flag"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=120, cwd=REPO)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--no-such-flag" in r.stderr, r.stderr
