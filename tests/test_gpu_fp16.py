"""fp16 numerics of the folded graph on a CUDA GPU (the engine's proxy). Skipped without a GPU; on the CPU the
same comparison routine is exercised with ONNX Runtime (tests/test_parity_cli.py, tests/test_export.py)."""
import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]


def test_folded_fp16_graph_within_fp16_tolerances(small_checkpoint):
    from edgeexport.checkpoint import load_model
    from edgeexport.compare import compare_outputs
    from edgeexport.deploy import ReferenceModel, build_deploy_model
    from edgeexport.export_parity import fixture_images
    from edgeexport.meta import BundleMeta
    from edgeexport.preprocess import network_input_from_8bit, stretch_to_network
    torch.backends.cudnn.allow_tf32 = False
    model, meta, _ = load_model(small_checkpoint)
    small = np.stack([stretch_to_network(im, 320, 320) for im in fixture_images(meta.labels)])
    with torch.no_grad():
        rb, rs = ReferenceModel(model).cuda()(torch.from_numpy(small.transpose(0, 3, 1, 2).copy()).float().cuda())
        deploy = build_deploy_model(model.cpu(), meta).half().cuda()
        x = torch.from_numpy(network_input_from_8bit(small, BundleMeta(meta).offsets)).half().cuda()
        fb, fs = deploy(x)
    report = compare_outputs({"boxes": rb.cpu().numpy(), "scores": rs.cpu().numpy()},
                             {"boxes": fb.float().cpu().numpy(), "scores": fs.float().cpu().numpy()}, 320, 320,
                             "fp16")
    assert report.ok, report.table()
