"""The host emulation of the DeepStream pipeline matches the PyTorch model's own detections on a clip of the
shapes the model was trained on."""
import json
import os
import re

import pytest
import torch

from edgeexport.device.check.compare import match_detections
from edgeexport.device.postprocess import Detections

from ..conftest import run_cli

pytestmark = pytest.mark.slow


def test_emulated_detections_match_pytorch_on_the_same_frames(trained_bundle):
    root = trained_bundle
    out_json, out_mp4 = str(root / "det.json"), str(root / "annotated.mp4")
    r = run_cli(["-m", "edgeexport.emulate", str(root / "bundle"), "--input", str(root / "clip.mp4"),
                 "--out", out_mp4, "--json", out_json, "--no-progress"])
    assert r.returncode == 0, r.stderr
    assert "FPS" in r.stdout and os.path.getsize(out_mp4) > 1000
    emulated = json.load(open(out_json))
    assert emulated["summary"]["frames"] == 20

    from edgeexport.data.frames import iter_frames
    from edgeexport.model.checkpoint import load_model
    model, meta, _ = load_model(str(root / "train" / "last.pth"))
    matched = missing = extra = 0
    with torch.no_grad():
        for (i, frame), em in zip(iter_frames(str(root / "clip.mp4")), emulated["frames"]):
            tv = model([torch.from_numpy(frame).permute(2, 0, 1).float() / 255])[0]
            keep = tv["scores"] >= 0.3
            ref = Detections(tv["boxes"][keep].numpy(), tv["scores"][keep].numpy(), tv["labels"][keep].numpy() - 1)
            got = Detections([o["box"] for o in em["objects"]], [o["score"] for o in em["objects"]],
                             [o["class_id"] for o in em["objects"]])
            pairs, miss, ext = match_detections(ref, got, 0.5)
            matched, missing, extra = matched + len(pairs), missing + len(miss), extra + len(ext)
    assert matched >= 20, "the trained model should find the clip's shapes"
    assert matched / float(matched + missing + extra) >= 0.85, (matched, missing, extra)


def test_emulate_reads_the_config_with_gkeyfile_and_refuses_what_it_cannot_emulate(trained_bundle, tmp_path):
    import shutil
    bundle = str(tmp_path / "b")
    shutil.copytree(str(trained_bundle / "bundle"), bundle)
    cfg = os.path.join(bundle, "infer_config.txt")
    original = open(cfg).read()
    args = ["-m", "edgeexport.emulate", bundle, "--input", str(trained_bundle / "clip.mp4"), "--max-frames", "3"]
    open(cfg, "w").write(original.replace("maintain-aspect-ratio=0", "maintain-aspect-ratio=true"))
    r = run_cli(args)
    assert r.returncode == 0, r.stderr  # a GLib boolean, emulated (letterboxed into the network input)
    for change, message in (("cluster-mode=2", "cluster-mode 1 is not emulated"), ("topk=", "topk must be >= 0")):
        text = original.replace("cluster-mode=2", "cluster-mode=1") if change == "cluster-mode=2" else \
            re.sub(r"^topk=.*$", "topk=-1", original, flags=re.M)
        open(cfg, "w").write(text)
        r = run_cli(args)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_emulate_missing_input_is_one_clear_error(trained_bundle):
    r = run_cli(["-m", "edgeexport.emulate", str(trained_bundle / "bundle"), "--input", "/nonexistent.mp4"])
    assert r.returncode == 2 and "not found" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_clip_ground_truth_is_written(trained_bundle):
    truth = json.load(open(str(trained_bundle / "clip.json")))
    assert len(truth["frames"]) == 20 and len(truth["frames"][0]["objects"]) == 3


@pytest.mark.parametrize("topk", [None, 1])
def test_efficient_nms_bundle_emulates_like_the_default_layout(trained_bundle, tmp_path, topk):
    """Both layouts keep the same boxes for the same flags. With --topk 1 and a low threshold every class has
    many candidates: a plugin that cut per image (max_output_boxes = topk) would lose classes nvinfer keeps."""
    bundles = {"default": str(trained_bundle / "bundle")}
    for layout in ("boxes_scores", "efficient_nms") if topk else ("efficient_nms",):
        out = str(tmp_path / layout)
        extra = ["--topk", str(topk), "--pre-cluster-threshold", "0.05"] if topk else \
            ["--pre-cluster-threshold", "0.3"]
        r = run_cli(["export.py", "--model-path", str(trained_bundle / "train" / "last.pth"), "--output-dir", out,
                     "--layout", layout, "--preprocess-min-agreement", "0"] + extra)
        assert r.returncode == 0, r.stderr
        bundles["default" if layout == "boxes_scores" else "nms"] = out
    outs = {}
    for name, bundle in sorted(bundles.items()):
        out = str(tmp_path / (name + ".json"))
        r = run_cli(["-m", "edgeexport.emulate", bundle, "--input", str(trained_bundle / "clip.mp4"), "--json", out,
                     "--no-progress"])
        assert r.returncode == 0, r.stderr
        outs[name] = json.load(open(out))["frames"]
    matched = total = 0
    for a, b in zip(outs["default"], outs["nms"]):
        da = Detections([o["box"] for o in a["objects"]], [o["score"] for o in a["objects"]],
                        [o["class_id"] for o in a["objects"]])
        db = Detections([o["box"] for o in b["objects"]], [o["score"] for o in b["objects"]],
                        [o["class_id"] for o in b["objects"]])
        pairs, miss, ext = match_detections(da, db, 0.99)
        matched, total = matched + len(pairs), total + len(pairs) + len(miss) + len(ext)
        if topk:
            assert len(set(da.classes.tolist())) == len(da)  # one box per class and frame
    assert total > 0 and matched == total
