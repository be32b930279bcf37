"""PyTorch: the deploy graph (folded) or the original model in the deploy layout, on CPU or GPU; and evaluate's
``fp16`` row, the deploy graph in fp16 on CUDA (named in edgeexport.device.check.eval_rows.HOST_ROWS)."""
import numpy as np

from ..device.check.eval_rows import NvInferRow
from ..device.errors import BackendUnavailableError
from ..device.runners.base import Runner


class TorchRunner(Runner):
    name = "torch"

    def __init__(self, module, output_names, input_name="input", device="cpu", half=False):
        super(TorchRunner, self).__init__()
        self.module, self.output_names, self.input_name = module, list(output_names), input_name
        self.device, self.half = device, half

    @classmethod
    def from_checkpoint(cls, path, fold="exact", color_format="rgb", layout="boxes_scores", bundle_meta=None,
                        **kwargs):
        from ..model.checkpoint import check_bundle_model, load_model
        from .deploy import build_deploy_model
        model, meta, _ = load_model(path)
        if bundle_meta is not None:
            check_bundle_model(model, bundle_meta, path)
        deploy = build_deploy_model(model, meta, fold, color_format, layout)
        return cls(deploy, deploy.output_names, **kwargs)

    def _activate(self):
        import torch
        self._torch = torch
        self.module = self.module.to(self.device).eval()
        if self.half:
            self.module = self.module.half()

    def _infer(self, feed):
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(feed[self.input_name], np.float32)).to(self.device)
        if self.half:
            x = x.half()
        with torch.no_grad():
            outs = self.module(x)
        return {n: o.float().cpu().numpy() for n, o in zip(self.output_names, outs)}


class Fp16DeployRow(NvInferRow):
    """The folded deploy graph (what model.onnx holds) in fp16 on CUDA, fed and post-processed as nvinfer does:
    where a TensorRT FP16 engine cannot be run, the closest measurement of what fp16 costs in mAP."""
    name = "fp16"

    def __init__(self, model_path, bundle, score_threshold):
        import torch
        if not torch.cuda.is_available():
            raise BackendUnavailableError("the fp16 row runs the graph in fp16 on a CUDA GPU; this machine has none")
        meta = bundle.meta
        layout = "boxes_scores" if meta.layout == "efficient_nms" else meta.layout
        runner = TorchRunner.from_checkpoint(model_path, meta.fold, meta.color_format, layout, device="cuda",
                                             half=True, bundle_meta=meta)
        super(Fp16DeployRow, self).__init__(bundle, score_threshold, runner=runner)
        if meta.layout == "efficient_nms":  # the plugin's NumPy reference after the graph, as for ONNX Runtime
            self.plugin = (score_threshold, meta.settings.nms_iou_threshold, meta.max_output_boxes)
