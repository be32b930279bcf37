"""evaluate: mAP backend by backend on the same images (COCOeval), the validation set export --val-data puts in a
bundle, and build_engine --int8's accuracy gate; the device rows against the TensorRT double and a DeepStream
results file."""
import argparse
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from edgeexport.device.bundle import Bundle
from edgeexport.device.check.coco_eval import ValidationSet
from edgeexport.device.check.eval_rows import NvInferRow, torchvision_postprocess
from edgeexport.device.check.evaluate import run_rows, table_rows
from edgeexport.device.errors import EngineBuildError, UsageError
from edgeexport.device.tensorrt import api
from edgeexport.device.tensorrt import build_engine as be
from edgeexport.device.tensorrt.runner import TensorRTRunner

from ...conftest import run_cli
from ..tensorrt.trt_double import FakeCuda, make_tensorrt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def val_bundle(trained_bundle, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("val") / "bundle")
    r = run_cli(["export.py", "--model-path", str(trained_bundle / "train" / "last.pth"), "--output-dir", out,
                 "--val-data", "synthetic:24", "--preprocess-min-agreement", "0"])
    assert r.returncode == 0, r.stderr
    assert "validation: 24 images" in r.stdout
    return out


def test_export_records_the_rows_and_ships_the_set(val_bundle):
    meta = Bundle(val_bundle).meta
    rows = {r["backend"]: r for r in meta.validation["rows"]}
    assert sorted(rows) == ["nvinfer", "onnxruntime", "pytorch"] and meta.validation["images"] == 24
    assert rows["pytorch"]["map"] > 0.2  # the trained model finds its shapes
    # the exported graph fed as torchvision feeds the model: the export costs no mAP (target <= 0.1 point)
    assert abs(rows["onnxruntime"]["map"] - rows["pytorch"]["map"]) <= 0.001
    assert set(rows["pytorch"]["per_class"]) == {"circle", "square", "triangle"}
    vset = ValidationSet.load(os.path.join(val_bundle, "validation", "annotations.json"))
    assert len(vset.images) == 24 and all(im["file_name"].startswith("images/") and os.path.isfile(vset.path(im))
                                          for im in vset.images)


def test_evaluate_table_json_and_png(trained_bundle, val_bundle, tmp_path):
    out_json, png = str(tmp_path / "eval.json"), str(tmp_path / "worst.png")
    r = run_cli(["-m", "edgeexport.evaluate", val_bundle, "--model-path", str(trained_bundle / "train" / "last.pth"),
                 "--backend", "pytorch", "onnxruntime", "nvinfer", "--json", out_json, "--png", png])
    assert r.returncode == 0, r.stderr
    d = json.load(open(out_json))
    assert [row["backend"] for row in d["rows"]] == ["pytorch", "onnxruntime", "nvinfer"]
    recorded = {row["backend"]: row["map"] for row in Bundle(val_bundle).meta.validation["rows"]}
    for row in d["rows"]:
        assert row["map"] == pytest.approx(recorded[row["backend"]], abs=1e-9)  # same set, same rows
        assert 0 <= row["map"] <= row["map50"] <= 1 and row["images"] == 24
    assert d["rows"][0]["delta_map"] == 0.0 and "delta (pts)" in r.stdout
    assert os.path.getsize(png) > 1000


def test_a_device_without_a_map_library_writes_results_the_host_scores(val_bundle, tmp_path):
    from ..jetson_process import run_in_bundle
    no_map = {"EDGEEXPORT_BLOCK_MAP": "1"}
    r = run_in_bundle(val_bundle, ["edgeexport.evaluate", ".", "--backend", "nvinfer"], onnxruntime=True, env=no_map)
    assert r.returncode != 0 and "--results-out" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    out = str(tmp_path / "results")
    r = run_in_bundle(val_bundle, ["edgeexport.evaluate", ".", "--backend", "nvinfer", "--results-out", out],
                      onnxruntime=True, env=no_map)
    assert r.returncode == 0, r.stderr
    assert "no mAP library here" in r.stdout and os.path.isfile(os.path.join(out, "nvinfer.json"))
    # the host scores the device's file as a deepstream row: the same mAP export recorded for the nvinfer row
    r = run_cli(["-m", "edgeexport.evaluate", val_bundle, "--backend", "deepstream", "--results",
                 os.path.join(out, "nvinfer.json"), "--json", str(tmp_path / "e.json")])
    assert r.returncode == 0, r.stderr
    got = json.load(open(str(tmp_path / "e.json")))["rows"][0]["map"]
    recorded = {row["backend"]: row["map"] for row in Bundle(val_bundle).meta.validation["rows"]}
    assert got == pytest.approx(recorded["nvinfer"], abs=1e-9)


def test_evaluate_bundle_api_with_an_in_memory_model(trained_bundle, val_bundle):
    import edgeexport
    from edgeexport.model import load_model
    model, _, _ = load_model(str(trained_bundle / "train" / "last.pth"))
    model.train()
    model.score_thresh = 0.123
    result = edgeexport.evaluate_bundle(val_bundle, ["pytorch", "onnxruntime"], model=model)
    recorded = {row["backend"]: row["map"] for row in Bundle(val_bundle).meta.validation["rows"]}
    assert [r["backend"] for r in result.rows] == ["pytorch", "onnxruntime"] and len(result.image_ids) == 24
    for backend in ("pytorch", "onnxruntime"):  # the same set and rows the export recorded, the same numbers
        assert result.row(backend)["map"] == pytest.approx(recorded[backend], abs=1e-9)
    assert "pytorch" in result.table() and "24 images" in result.table()
    assert model.training and model.score_thresh == 0.123  # the caller's model is left as it was given
    with pytest.raises(UsageError, match="available: pytorch, onnxruntime"):
        edgeexport.evaluate_bundle(val_bundle, ["onnx"])
    with pytest.raises(UsageError, match="no row 'tensorrt'.*available: pytorch, onnxruntime"):
        result.row("tensorrt")


def test_a_synthetic_set_of_the_training_size(small_bundle, tmp_path):
    from edgeexport.device.check.evaluate import load_validation_set
    vset = load_validation_set(Bundle(small_bundle[0]), str(tmp_path), "synthetic", synthetic_size=3, seed=2,
                               synthetic_image_size=(64, 96))
    assert len(vset.images) == 3
    for image in vset.images:
        assert (image["height"], image["width"]) == (64, 96) and Image.open(vset.path(image)).size == (96, 64)


def test_device_rows_tensorrt_double_and_deepstream_results(val_bundle, tmp_path):
    """tensorrt: the engine through nvinfer's path (the double computes in fp32, so it equals the nvinfer row);
    deepstream: a results file in the pyds app's --coco-out format, matched by file name."""
    bundle = str(tmp_path / "b")
    shutil.copytree(val_bundle, bundle)
    api._PROCESS.update(logger=None, plugins=None)
    cuda = FakeCuda()
    trt = make_tensorrt("10", "desktop", cuda=cuda)
    be.main(_args(bundle, "fp32"), trt=trt, cuda=cuda)
    b = Bundle(bundle)
    vset = ValidationSet.load(os.path.join(bundle, "validation", "annotations.json"))
    engine = b.file("model.onnx_b1_gpu0_fp32.engine")
    trt_row = NvInferRow(b, 0.01, runner=TensorRTRunner(engine, trt=trt, cuda=cuda, meta=b.meta))
    trt_row.name = "tensorrt"
    dets, secs, ids = run_rows([trt_row, NvInferRow(b, 0.01)], vset)  # run_rows enters and exits them
    table = {r["backend"]: r for r in table_rows(dets, secs, vset, b.labels, ids)}
    assert table["tensorrt"]["map"] == pytest.approx(table["nvinfer"]["map"], abs=1e-6)
    results = []
    for image in vset.images:  # what deepstream_app --coco-out writes for these detections
        d = dets["nvinfer"][image["id"]]
        for box, s, c in zip(d.boxes, d.scores, d.classes):
            results.append({"image_id": image["id"], "category_id": int(c) + 1, "file_name": image["file_name"],
                            "category_name": b.labels[int(c)], "score": float(s),
                            "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]})
    res = str(tmp_path / "ds.json")
    json.dump(results, open(res, "w"))
    out = str(tmp_path / "e.json")
    r = run_cli(["-m", "edgeexport.evaluate", bundle, "--backend", "deepstream", "--results", res, "--json", out])
    assert r.returncode == 0, r.stderr
    row = json.load(open(out))["rows"][0]
    assert row["map"] == pytest.approx(table["nvinfer"]["map"], abs=1e-6)
    assert "which export recorded for this set" in r.stdout  # the delta is against the recorded PyTorch mAP


def _args(bundle, precision, **kw):
    d = dict(target=bundle, precision=precision, batch=None, workspace=None, timing_cache=None, dla_core=None,
             gpu_id=0, calib_images=None, calib_batches=2, force=True, verbose=False)
    d.update(kw)
    return argparse.Namespace(**d)


def _double(**kw):
    cuda = FakeCuda()
    return make_tensorrt("10", "desktop", cuda=cuda, **kw), cuda


def _calib_images(folder):
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (320, 320, 3)).astype(np.uint8)).save(os.path.join(folder,
                                                                                             "%d.jpg" % i))
    return folder


def test_int8_engine_kept_within_the_limit_refused_beyond_it(val_bundle, tmp_path):
    bundle = str(tmp_path / "b")
    shutil.copytree(val_bundle, bundle)
    calib = _calib_images(str(tmp_path / "calib"))
    engine = os.path.join(bundle, "model.onnx_b1_gpu0_int8.engine")
    api._PROCESS.update(logger=None, plugins=None)
    be.main(_args(bundle, "int8", calib_images=calib), *_double())
    assert os.path.isfile(engine)  # the double's INT8 computes as fp32: no drop
    api._PROCESS.update(logger=None, plugins=None)
    with pytest.raises(EngineBuildError, match=r"INT8 engine refused and removed: mAP 0\.\d+ .* against 0\.\d+ .*"
                                               r"> --max-map-drop 1"):
        be.main(_args(bundle, "int8", calib_images=calib, max_map_drop=1.0), *_double(int8_box_shift=0.05))
    assert not os.path.exists(engine) and not os.path.exists(engine + ".json")
    api._PROCESS.update(logger=None, plugins=None)
    be.main(_args(bundle, "int8", calib_images=calib, max_map_drop=100.0), *_double(int8_box_shift=0.05))
    assert os.path.isfile(engine)  # a limit the user chose


def test_int8_without_a_validation_set(small_bundle, tmp_path, capsys):
    bundle = str(tmp_path / "b")
    shutil.copytree(small_bundle[0], bundle)
    calib = _calib_images(str(tmp_path / "calib"))
    api._PROCESS.update(logger=None, plugins=None)
    with pytest.raises(UsageError, match="--max-map-drop needs the bundle's validation set"):
        be.main(_args(bundle, "int8", calib_images=calib, max_map_drop=1.0), *_double())
    be.main(_args(bundle, "int8", calib_images=calib), *_double())
    assert "accuracy is not checked" in capsys.readouterr().out


def test_torchvision_postprocess_matches_torchvision():
    """The onnxruntime row's post-processing is torchvision's SSD.postprocess_detections."""
    import torch
    from torchvision.ops import batched_nms
    rng = np.random.default_rng(1)
    boxes = np.sort(rng.random((200, 4)), 1)[:, [0, 1, 2, 3]].astype(np.float32)
    boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], 1)
    scores = rng.random((200, 3)).astype(np.float32) ** 4
    ours = torchvision_postprocess(boxes, scores, 100, 50, 0.05, 0.5, topk_candidates=50, detections_per_img=40)
    b, s, c = [], [], []
    for k in range(3):
        idx = np.nonzero(scores[:, k] > 0.05)[0]
        idx = idx[np.argsort(-scores[idx, k], kind="stable")][:50]
        b.append(boxes[idx]), s.append(scores[idx, k]), c.append(np.full(len(idx), k))
    b, s, c = (torch.from_numpy(np.concatenate(v)) for v in (b, s, c))
    keep = batched_nms(b.double(), s.double(), c, 0.5)[:40]
    assert len(keep) == len(ours)
    np.testing.assert_allclose(np.sort(s[keep].numpy()), np.sort(ours.scores), atol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--backend", "deepstream"], "needs --results"),
    (["--backend", "pytorch", "--dataset", "synthetic"], "needs --model-path"),
    (["--backend", "nvinfer"], "no validation set"),
    (["--backend", "nvinfer", "--dataset", "voc"], "needs --data-path"),
])
def test_bad_input_is_one_line(small_bundle, args, message):
    r = run_cli(["-m", "edgeexport.evaluate", small_bundle[0]] + args)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
