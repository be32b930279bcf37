"""--preprocess nvinfer: train on what DeepStream feeds the network, recorded in the checkpoint; export then
compares like with like."""
import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from edgeexport.device.preprocess import scale_frame
from edgeexport.train.transforms import NvInferStretch

from ..conftest import run_cli


def test_the_stretch_is_nvinfers_and_boxes_follow():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (241, 401, 3)).astype(np.uint8)  # odd: nvinfer drops the last row and column
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[40.0, 24.0, 200.0, 120.0], [380.0, 200.0, 401.0, 241.0]]),
                                     format="XYXY", canvas_size=(241, 401))
    out_img, out = NvInferStretch((320, 320))(tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1)),
                                              {"boxes": boxes, "labels": torch.tensor([1, 2])})
    expected, scale = scale_frame(img, 320, 320, 1)
    assert np.array_equal(out_img.permute(1, 2, 0).numpy(), expected)
    assert out["boxes"][0].tolist() == pytest.approx([40 * 320 / 400.0, 24 * 320 / 240.0, 200 * 320 / 400.0,
                                                      120 * 320 / 240.0])
    assert out["boxes"][1].tolist() == pytest.approx([304.0, 266.6667, 320.0, 320.0], abs=1e-3)  # clamped
    assert tuple(out["boxes"].canvas_size) == (320, 320) and out["labels"].tolist() == [1, 2]


def test_the_checkpoint_records_it(tmp_path):
    r = run_cli(["-m", "edgeexport.train", "--dataset", "synthetic", "--arch", "ssdlite320_mobilenet_v3_small",
                 "--synthetic-train-size", "32", "--synthetic-val-size", "4", "--epochs", "1", "-b", "16", "-j", "0",
                 "--no-progress", "--preprocess", "nvinfer", "--output-dir", str(tmp_path / "run")])
    assert r.returncode == 0, r.stderr
    from edgeexport.model.checkpoint import load_model
    _, meta, _ = load_model(str(tmp_path / "run" / "last.pth"))
    assert meta.preprocessing == "nvinfer"


@pytest.mark.slow
def test_export_compares_like_with_like(trained_bundle):
    """The same trained model, declared as trained on nvinfer's stretch: export's preprocessing check feeds both
    sides the same 8-bit image and they agree on every detection."""
    from edgeexport.device.meta import BundleMeta
    from edgeexport.device.runners.onnxruntime import OnnxRuntimeRunner
    from edgeexport.export.parity import fixture_images, preprocessing_parity
    from edgeexport.model.checkpoint import load_model
    model, mmeta, _ = load_model(str(trained_bundle / "train" / "last.pth"))
    mmeta.preprocessing = "nvinfer"
    meta = BundleMeta(mmeta)
    with OnnxRuntimeRunner(str(trained_bundle / "bundle" / "model.onnx")) as runner:
        pre = preprocessing_parity(model.eval(), runner, meta, fixture_images(mmeta.labels), 1)
    assert pre["matched"] > 0 and pre["agreement"] == 1.0 and pre["model_preprocessing"] == "nvinfer"
