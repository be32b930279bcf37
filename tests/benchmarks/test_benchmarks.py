import argparse
import json
import os
import shutil

import numpy as np
import pytest

from benchmarks.deepstream_perf import perf_fps
from benchmarks.stats import board_name, markdown_table, percentile, summarize

from ..conftest import run_cli


def test_percentile_matches_numpy_and_summary_is_right():
    rng = np.random.default_rng(0)
    xs = list(rng.exponential(0.01, 101))
    for q in (0, 50, 90, 99, 100):
        assert percentile(xs, q) == pytest.approx(np.percentile(xs, q))
    s = summarize([0.010, 0.020, 0.030, 0.040, 1.0], batch_size=4)
    assert s["median_ms"] == pytest.approx(30.0) and s["fps"] == pytest.approx(4 / 0.03)
    assert s["p99_ms"] == pytest.approx(1000 * (0.04 + 0.96 * 0.96))
    assert s["min_ms"] == pytest.approx(10.0) and s["iterations"] == 5
    with pytest.raises(ValueError):
        summarize([0.1], 0)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_markdown_table_and_board_name():
    t = markdown_table([{"a": 1.234, "b": "x"}], [("A", "a"), ("B", lambda r: r["b"] * 2)])
    assert t.splitlines() == ["| A | B |", "|---|---|", "| 1.23 | xx |"]
    assert board_name()


def test_deepstream_perf_parsing_drops_warmup_per_stream(tmp_path):
    log = ("**PERF:  FPS 0 (Avg)\tFPS 1 (Avg)\n**PERF:  12.50 (12.50)\t11.00 (11.00)\nsome line\n"
           "**PERF:  30.10 (25.00)\t29.00 (24.00)\n**PERF:  29.90 (27.00)\t31.00 (26.00)\n")
    assert perf_fps(log) == [[30.10, 29.00], [29.90, 31.00]]
    path = tmp_path / "ds.log"
    path.write_text(log)
    out = str(tmp_path / "ds.json")
    r = run_cli(["benchmarks/deepstream_perf.py", str(path), "--json", out])
    assert r.returncode == 0, r.stderr
    streams = json.load(open(out))["streams"]
    assert [round(s["mean_fps"], 2) for s in streams] == [30.0, 30.0]
    assert run_cli(["benchmarks/deepstream_perf.py", "--help"]).returncode == 0
    empty = tmp_path / "empty.log"
    empty.write_text("no perf here\n")
    r = run_cli(["benchmarks/deepstream_perf.py", str(empty)])
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "**PERF" in r.stderr


def test_host_fps_runs_end_to_end_on_cpu(small_checkpoint, tmp_path):
    out = str(tmp_path / "fps.json")
    r = run_cli(["benchmarks/host_fps.py", "--model-path", small_checkpoint, "--iters", "3", "--warmup", "1",
                 "--frame-size", "240", "320", "--json", out])
    assert r.returncode == 0, r.stderr
    data = json.load(open(out))
    names = {row["pipeline"] for row in data["results"]}
    assert names == {"torchvision_eager", "deploy_fp32", "onnxruntime"}
    assert all(row["fps"] > 0 and row["iterations"] == 3 for row in data["results"])
    assert "x torchvision eager" in r.stdout


def test_host_fps_without_a_model_measures_an_untrained_calibrated_one(tmp_path):
    out = str(tmp_path / "fps.json")
    r = run_cli(["benchmarks/host_fps.py", "--arch", "ssdlite320_mobilenet_v3_small", "--pipelines", "onnxruntime",
                 "--batch-sizes", "1", "--iters", "2", "--warmup", "1", "--json", out])
    assert r.returncode == 0, r.stderr
    rows = json.load(open(out))["results"]
    assert [row["pipeline"] for row in rows] == ["onnxruntime"] and rows[0]["fps"] > 0


def test_trt_fps_end_to_end_with_the_tensorrt_double(small_bundle, tmp_path):
    from benchmarks import trt_fps
    from edgeexport.device.tensorrt import build_engine as be
    from tests.device.tensorrt.trt_double import FakeCuda, make_tensorrt
    bundle = str(tmp_path / "b")
    shutil.copytree(small_bundle[0], bundle)
    cuda = FakeCuda("nano")
    trt = make_tensorrt("8.2", "nano", cuda=cuda)
    be.main(argparse.Namespace(target=bundle, precision=None, batch=None, workspace=256, timing_cache=None,
                               dla_core=None, gpu_id=0, calib_images=None, calib_batches=1, force=False,
                               verbose=False), trt=trt, cuda=cuda)
    out = str(tmp_path / "trt.json")
    args = argparse.Namespace(bundle=bundle, engine=None, batch_sizes=None, warmup=1, iterations=3, json=out)
    trt_fps.main(args, trt=trt, cuda=cuda)
    data = json.load(open(out))
    row = data["results"][0]
    assert row["batch_size"] == 1 and row["end_to_end"]["iterations"] == 3 and row["precision"] == "fp16"
    assert data["board"]
    # an engine without its build record is not measured: its origin is unknown
    os.unlink(os.path.join(bundle, "model.onnx_b1_gpu0_fp16.engine.json"))
    from edgeexport.device.errors import InputFileError
    with pytest.raises(InputFileError, match="no build record"):
        trt_fps.main(args, trt=trt, cuda=cuda)


def test_parser_fps_reports_both_layouts(tmp_path):
    from tests.jetson.conftest import build_parser_tests
    build = build_parser_tests()
    out = str(tmp_path / "p.json")
    r = run_cli(["benchmarks/parser_fps.py", "--build-dir", build, "--iterations", "50", "--json", out])
    assert r.returncode == 0, r.stderr
    rows = json.load(open(out))["results"]
    assert len(rows) == 2 and all(row["same_objects"] for row in rows)
    assert rows[0]["bytes_ratio"] > 10  # 90 classes: the top-class layout moves far fewer bytes


def test_train_speed_runs_every_row_on_cpu(tmp_path):
    out = str(tmp_path / "speed.json")
    r = run_cli(["benchmarks/train_speed.py", "--arch", "ssdlite320_mobilenet_v3_small", "--batch-sizes", "2",
                 "--steps", "2", "--warmup", "1", "--device", "cpu", "--workers", "0", "--loader-images", "4",
                 "--json", out])
    assert r.returncode == 0, r.stderr
    rows = json.load(open(out))["rows"]
    assert [row["row"] for row in rows] == ["reference", "ours", "ours+loader", "network"]
    assert all(row["images_per_s"] > 0 and row["batch"] == 2 for row in rows)
    assert "ours / reference" in r.stdout


def test_each_input_row_is_compared_with_the_nearest_run_of_the_step_it_feeds():
    from benchmarks.train_speed import fed_steps
    rows = [{"row": n, "k": k} for k, n in enumerate(["ours+compile", "jpeg:gpu+compile", "ours+compile",
                                                       "jpeg:gpu+compile", "ours", "jpeg:gpu", "network"])]
    pairs = [(r["k"], base["k"]) for r, base in fed_steps(rows)]
    assert pairs == [(1, 0), (3, 2), (5, 4)]  # row 1 is as near to 0 as to 2: the earlier
    assert fed_steps([{"row": "jpeg:cpu+compile"}, {"row": "ours"}]) == []  # compiled only against compiled


def test_train_speed_jpeg_rows_and_loader_speed_read_a_jpeg_folder(tmp_path):
    """The rows that feed the step from a JPEG folder through the trainer's own input pipelines, each reported
    against the step of the same run, and the loader alone per worker; a jpeg row without a folder is one line."""
    from edgeexport.data.make_voc import write_voc
    root = str(tmp_path / "voc")
    write_voc(root, train=8, val=1, size=(160, 120), classes=2)
    out = str(tmp_path / "speed.json")
    r = run_cli(["benchmarks/train_speed.py", "--arch", "ssdlite320_mobilenet_v3_small", "--batch-sizes", "2",
                 "--steps", "1", "--warmup", "1", "--device", "cpu", "--workers", "0", "--rows", "ours", "jpeg:cpu",
                 "jpeg:cpu-v2", "jpeg:cpu+compile", "--compile-backend", "aot_eager", "--data-path", root,
                 "--step-stream", "side", "--json", out])  # no CUDA: the step stays where it is
    assert r.returncode == 0, r.stderr
    rows = json.load(open(out))["rows"]
    assert json.load(open(out))["env"]["step_stream"] == "side"
    # a compiled row asked for alone: timed, but with no compiled step in the run to be a share of
    assert [row["row"] for row in rows] == ["ours", "jpeg:cpu", "jpeg:cpu-v2", "jpeg:cpu+compile"]
    assert all(row["of_step"] > 0 for row in rows[1:3]) and "jpeg:cpu at " in r.stdout
    # a fed row says how long its step waited for each batch (no preparing thread off CUDA: no more phases)
    assert rows[0]["input"] is None and all(row["input"]["wait_ms"] > 0 for row in rows[1:])
    assert "input ms/batch: waited" in r.stdout
    assert rows[3]["images_per_s"] > 0 and "of_step" not in rows[3]
    r = run_cli(["benchmarks/train_speed.py", "--device", "cpu", "--rows", "jpeg:cpu"])
    assert r.returncode == 2 and "--data-path" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(["benchmarks/train_speed.py", "--device", "cpu", "--rows", "ours+compile", "--compile-backend",
                 "aot_eager", "--compile-mode", "reduce-overhead", "--json", str(tmp_path / "no.json")])
    assert r.returncode == 2 and "--compile-mode" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "no.json").exists()
    out = str(tmp_path / "loader.json")
    r = run_cli(["benchmarks/loader_speed.py", "--data-path", root, "--workers", "0", "-b", "2", "--batches", "2",
                 "--stages", "4", "--json", out])
    assert r.returncode == 0, r.stderr
    rows = json.load(open(out))["rows"]
    stages = json.load(open(out))["stages_ms"]
    assert set(stages) == {"read", "decode", "decode 1/2", "decode 1/4", "decode 1/8", "draw", "cut out",
                           "resize+flip", "whole sample", "reduced sample"}
    assert all(v > 0 for v in stages.values()) and stages["whole sample"] > stages["decode"]
    assert [row["decode"] for row in rows] == ["cpu-v2", "cpu", "gpu", "cpu+gpucrop", "cpu+reduced",
                                               "cpu+reduced+gpucrop"]
    assert all(row["images_per_s_per_worker"] > 0 for row in rows)
    # nvJPEG's overlap benchmark needs CUDA: without it, one line and nothing written
    if not __import__("torch").cuda.is_available():
        r = run_cli(["benchmarks/nvjpeg_overlap.py", "--data-path", root, "--json", str(tmp_path / "o.json")])
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [
            "error: nvJPEG needs a CUDA GPU; this machine has none"]
        assert not (tmp_path / "o.json").exists()


def test_input_profile_counts_nested_operators_once_and_streams_apart():
    from benchmarks.input_profile import summarise
    ev = [{"ph": "X", "cat": "cpu_op", "tid": 1, "ts": 0, "dur": 10},  # an operator ...
          {"ph": "X", "cat": "cpu_op", "tid": 1, "ts": 2, "dur": 5},   # ... and one it calls
          {"ph": "X", "cat": "cpu_op", "tid": 1, "ts": 30, "dur": 10},
          {"ph": "X", "cat": "cpu_op", "tid": 2, "ts": 0, "dur": 40},  # another thread's
          {"ph": "X", "cat": "kernel", "tid": 7, "ts": 5, "dur": 20, "args": {"stream": 7}},
          {"ph": "X", "cat": "kernel", "tid": 9, "ts": 10, "dur": 4, "args": {"stream": 9}},
          {"ph": "M", "name": "thread_name"}]
    s = summarise({"traceEvents": ev}, steps=2, main_tid=1)
    assert s["span_ms_per_step"] == pytest.approx(0.040 / 2)
    assert s["launching_thread_in_ops_ms_per_step"] == pytest.approx(0.020 / 2)
    assert s["cuda_ms_per_step_by_stream"] == {"7": pytest.approx(0.010), "9": pytest.approx(0.002)}
    assert s["threads_with_ops"] == ["1", "2"]


def test_input_profile_writes_a_trace_and_a_summary_per_row(tmp_path):
    from edgeexport.data.make_voc import write_voc
    root = str(tmp_path / "voc")
    write_voc(root, train=8, val=1, size=(160, 120), classes=2)
    out = tmp_path / "profile"
    r = run_cli(["benchmarks/input_profile.py", "--data-path", root, "--arch", "ssdlite320_mobilenet_v3_small",
                 "--rows", "ours", "jpeg:cpu", "-b", "2", "--workers", "0", "--steps", "1", "--profile-steps", "1",
                 "--out-dir", str(out)])
    assert r.returncode == 0, r.stderr
    rows = json.load(open(str(out / "summary.json")))["rows"]
    assert list(rows) == ["ours", "jpeg:cpu"]
    assert all(row["images_per_s"] > 0 and 0 < row["launching_thread_in_ops_ms_per_step"] for row in rows.values())
    assert sorted(os.listdir(str(out))) == ["jpeg_cpu.trace.json.gz", "ours.trace.json.gz", "summary.json"]
    r = run_cli(["benchmarks/input_profile.py", "--data-path", str(tmp_path / "none"), "--out-dir",
                 str(tmp_path / "p2")])
    assert r.returncode == 2 and "not a VOC folder" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "p2").exists()


def test_train_speed_compile_row_reports_its_agreement_with_the_eager_step(tmp_path):
    # aot_eager: TorchDynamo's capture and AOTAutograd without Inductor's kernels (which take minutes to build on
    # a 2-core CPU): the capture is exact, so both differences are zero to float32's last bits
    out = str(tmp_path / "speed.json")
    r = run_cli(["benchmarks/train_speed.py", "--arch", "ssdlite320_mobilenet_v3_small", "--batch-sizes", "2",
                 "--steps", "1", "--warmup", "0", "--device", "cpu", "--rows", "ours", "--compile",
                 "--compile-backend", "aot_eager", "--json", out])
    assert r.returncode == 0, r.stderr
    rows = json.load(open(out))["rows"]
    assert [row["row"] for row in rows] == ["ours", "ours+compile"]
    assert rows[1]["loss_rel_diff"] <= 1e-6 and rows[1]["grad_rel_diff"] <= 1e-5, rows[1]
    assert rows[1]["eager_vs_float64_grad_rel_diff"] > 0  # float32 rounds; the yardstick is not zero
    assert "compiled (aot_eager) vs eager" in r.stdout


def test_even_crop_rows_on_a_bundle(small_bundle, tmp_path):
    out = str(tmp_path / "even.json")
    r = run_cli(["benchmarks/even_crop.py", small_bundle[0], "--synthetic-size", "3", "--json", out])
    assert r.returncode == 0, r.stderr
    rows = json.load(open(out))[small_bundle[0]]
    assert [row["backend"] for row in rows] == ["onnxruntime", "even_crop", "nvinfer"]
    assert all(0 <= row["map"] <= row["map50"] <= 1 for row in rows)


@pytest.fixture(scope="module")
def int8_val_bundle(small_checkpoint, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("int8val") / "bundle")
    r = run_cli(["export.py", "--model-path", small_checkpoint, "--output-dir", out, "--precision", "int8",
                 "--calib-data", "synthetic:6", "--val-data", "synthetic:6", "--preprocess-min-agreement", "0"])
    assert r.returncode == 0, r.stderr
    return out


def test_int8_speed_times_both_graphs_side_by_side(int8_val_bundle, tmp_path):
    out = str(tmp_path / "speed.json")
    r = run_cli(["benchmarks/int8_speed.py", int8_val_bundle, "--iters", "4", "--warmup", "1", "--json", out])
    assert r.returncode == 0, r.stderr
    data = json.load(open(out))
    assert [row["graph"] for row in data["rows"]] == ["fp32", "int8"]
    assert all(row["median_ms"] > 0 for row in data["rows"]) and data["int8_vs_fp32"] > 0


def test_int8_ranges_scores_each_range_statistic(int8_val_bundle, tmp_path):
    out = str(tmp_path / "ranges.json")
    r = run_cli(["benchmarks/int8_ranges.py", int8_val_bundle, "--calib-data", "synthetic:5", "--calib-max-images", "5",
                 "--stats", "minmax", "--max-layer-error", "0.01", "1.0", "--json", out])
    assert r.returncode == 0, r.stderr
    data = json.load(open(out))
    assert [(row["range"], row["max_layer_error"]) for row in data["rows"]] == [("minmax", 0.01), ("minmax", 1.0)]
    # a lower limit keeps more convs float, from the same errors (the image-max statistics: tests/export)
    assert data["rows"][0]["float_convs"] > data["rows"][1]["float_convs"]
    assert data["images"] == 6 and all(0.0 <= row["map"] <= 1.0 for row in data["rows"])
    assert all(row["drop_points"] == pytest.approx(100 * (data["fp32"] - row["map"]), abs=0.01) for row in data["rows"])


def test_int8_table_reads_each_bundles_rows_and_its_base(int8_val_bundle, tmp_path):
    out = str(tmp_path / "table.json")
    r = run_cli(["benchmarks/int8_table.py", "ptq={}".format(int8_val_bundle),
                 "qat={}:{}".format(int8_val_bundle, int8_val_bundle), "--json", out])
    assert r.returncode == 0, r.stderr
    ptq, qat = json.load(open(out))["rows"]
    rows = {row["backend"]: row["map"] for row in json.load(open(os.path.join(int8_val_bundle, "model.json")))[
        "validation"]["rows"]}
    assert ptq["fp32"] == round(rows["nvinfer"], 4) and ptq["int8"] == round(rows["int8"], 4)
    assert ptq["method"] == "image-max" and "base_fp32" not in ptq
    assert qat["vs_base_points"] == pytest.approx(-ptq["drop_points"], abs=0.01)


def test_int8_parity_holds_the_literal_qdq_graph_to_the_int8_fixtures(int8_val_bundle, tmp_path):
    out = str(tmp_path / "parity.json")
    r = run_cli(["benchmarks/int8_parity.py", int8_val_bundle, "--json", out])
    row = json.load(open(out))["rows"][0]
    assert row["precision"] == "int8-qdq" and r.returncode == (0 if row["ok"] else 1)
    # two runs of one graph: far closer than INT8 is to fp32
    assert row["scores_max"] < 0.3 and "scores" in row["int8_vs_fp32_fixtures"]


def test_eval_views_show_each_view_and_score_in_the_photos_pixels(small_checkpoint, tmp_path):
    """benchmarks/eval_views.py: the reduced view is the photo decoded at its DCT scale, the antialias view the
    network's size; a model that finds each box exactly (in the pixels it was shown) scores 1.0 in every view,
    so the boxes are scaled back to the photo before scoring; the CLI writes one row per checkpoint."""
    import torch
    from benchmarks.eval_views import VIEWS, view_map, viewed
    from edgeexport.data import VOCDetection
    from edgeexport.data.make_voc import write_voc
    from edgeexport.device.meta import ModelMeta
    root = str(tmp_path / "voc")
    write_voc(root, train=1, val=3, size=(1400, 1000), classes=3)
    voc = VOCDetection(root, None, "val")
    path = voc.items[0][0]
    image, _ = voc[0]
    shapes = {v: tuple(viewed(path, image, v, (320, 320)).shape) for v in VIEWS}
    assert shapes == {"full": (3, 1000, 1400), "reduced": (3, 500, 700), "antialias": (3, 320, 320)}
    full, reduced = viewed(path, image, "full", (320, 320)), viewed(path, image, "reduced", (320, 320))
    # the same photo in the same channel order: each channel's mean agrees (the channels' means do not)
    means = full.mean(dim=(1, 2)), reduced.mean(dim=(1, 2))
    assert float(full.max()) <= 1.0 and float((means[0] - means[1]).abs().max()) < 0.01
    assert float((means[0] - means[0].flip(0)).abs().max()) > 0.03

    class Oracle:  # the photo's boxes, in the pixels of the view it is given
        def __init__(self):
            self.i = 0

        def __call__(self, images):
            x = images[0]
            img, target = voc[self.i % len(voc)]
            self.i += 1
            s = torch.tensor([x.shape[-1] / img.shape[1], x.shape[-2] / img.shape[0]] * 2)
            boxes = torch.from_numpy(target["boxes"]) * s
            return [{"boxes": boxes, "labels": torch.from_numpy(target["labels"]),
                     "scores": torch.ones(len(boxes))}]

    meta = ModelMeta("ssdlite320_mobilenet_v3_small", voc.labels)
    assert all(view_map(Oracle(), meta, voc, v)["map"] > 0.99 for v in VIEWS)
    out = str(tmp_path / "views.json")
    r = run_cli(["benchmarks/eval_views.py", "--voc", root, "--checkpoints", small_checkpoint, "--views", "full",
                 "reduced", "--json", out])
    assert r.returncode == 0, r.stderr
    rows = json.load(open(out))["rows"]
    assert len(rows) == 1 and set(rows[0]) == {"checkpoint", "full", "reduced"}
    assert all(0.0 <= rows[0][v]["map"] <= 1.0 for v in ("full", "reduced"))
    r = run_cli(["benchmarks/eval_views.py", "--voc", str(tmp_path / "none"), "--checkpoints", small_checkpoint])
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_loader_speed_pins_a_gpu_batchs_tensors_and_keeps_its_paths(tmp_path):
    """loader_speed's GPU-half rows pin each collated batch as the trainer's loader does: its tensors, not the
    files' paths (a tuple; pinning every field raised AttributeError on the H200, tenth pass)."""
    import torch
    from benchmarks.loader_speed import loader_for, pinned
    from edgeexport.data import VOCDetection
    from edgeexport.data.make_voc import write_voc
    root = str(tmp_path / "voc")
    write_voc(root, train=4, val=1, size=(160, 120), classes=2)
    voc = VOCDetection(root)
    for decode in ("gpu", "cpu+gpucrop"):
        batch = next(iter(loader_for(voc, decode, 2, 0)))
        seen = []
        out = pinned(batch, pin=lambda t: seen.append(t) or t.clone())
        assert type(out) is type(batch) and out.paths == batch.paths and isinstance(out.paths, tuple)
        assert len(seen) == sum(isinstance(t, torch.Tensor) for t in batch) == len(batch) - 1
