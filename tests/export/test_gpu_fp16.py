"""fp16 numerics of the folded graph on a CUDA GPU (the engine's proxy). Skipped without a GPU; on the CPU the
same comparison routine is exercised with ONNX Runtime (tests/device/check/test_parity_cli.py,
tests/export/test_export.py)."""
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]


def test_folded_fp16_graph_within_fp16_tolerances(small_checkpoint):
    from edgeexport.device.check.compare import compare_outputs
    from edgeexport.export.parity import fixture_images, fp16_vs_fp32
    from edgeexport.model.checkpoint import load_model
    torch.backends.cudnn.allow_tf32 = False
    model, meta, _ = load_model(small_checkpoint)
    with torch.no_grad():
        ref, got = fp16_vs_fp32(model, meta, fixture_images(meta.labels), torch.device("cuda"))
    from edgeexport.device.meta import DetectionSettings
    from edgeexport.export.parity import fixture_threshold
    report = compare_outputs(ref, got, 320, 320, "fp16", DetectionSettings(), fixture_threshold(ref, 0.4))
    assert report.ok, report.table()
