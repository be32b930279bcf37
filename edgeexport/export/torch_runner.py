"""PyTorch: the deploy graph (folded) or the original model in the deploy layout, on CPU or GPU."""
import numpy as np

from ..device.runners.base import Runner


class TorchRunner(Runner):
    name = "torch"

    def __init__(self, module, output_names, input_name="input", device="cpu", half=False):
        super(TorchRunner, self).__init__()
        self.module, self.output_names, self.input_name = module, list(output_names), input_name
        self.device, self.half = device, half

    @classmethod
    def from_checkpoint(cls, path, fold="exact", color_format="rgb", layout="boxes_scores", **kwargs):
        from ..model.checkpoint import load_model
        from .deploy import build_deploy_model
        model, meta, _ = load_model(path)
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
