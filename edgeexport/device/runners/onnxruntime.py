"""ONNX Runtime: the engine's stand-in on every host and in CI (optional on the device)."""
import numpy as np

from ..errors import BackendUnavailableError, InferenceError, InputFileError
from .base import Runner


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def __init__(self, onnx_path, providers=None, threads=0, optimize=True):
        """``onnx_path``: a file, or the serialised model as bytes. ``optimize=False``: every graph optimisation
        off, each node run as written (a Q/DQ graph as float QuantizeLinear/DequantizeLinear arithmetic instead of
        ONNX Runtime's fused INT8 kernels)."""
        super(OnnxRuntimeRunner, self).__init__()
        self.onnx_path = onnx_path if isinstance(onnx_path, bytes) else str(onnx_path)
        self.providers, self.threads, self.optimize = providers, int(threads), bool(optimize)
        self.session = None

    def _activate(self):
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailableError("onnxruntime is not installed: pip install onnxruntime")
        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = self.threads
        if not self.optimize:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(self.onnx_path, opts,
                                                providers=self.providers or ["CPUExecutionProvider"])
        except Exception as e:  # by design: whatever ONNX Runtime cannot load is not a model it can run
            text = str(e).strip()
            raise InputFileError("ONNX Runtime cannot load {}: {}".format(
                self._where(), text.splitlines()[0][:200] if text else type(e).__name__))

    @property
    def input_names(self):
        return [i.name for i in self.session.get_inputs()]

    @property
    def output_names(self):
        return [o.name for o in self.session.get_outputs()]

    def _infer(self, feed):
        feed = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feed.items()}
        for spec in self.session.get_inputs():  # say which file and shape, not ONNX Runtime's internal error
            if spec.name not in feed:
                raise InferenceError("{} takes input {!r}, the feed has {}".format(
                    self._where(), spec.name, sorted(feed)))
            got = feed[spec.name].shape
            want = spec.shape
            if len(got) != len(want) or any(isinstance(w, int) and w != g for w, g in zip(want, got)):
                raise InferenceError("{} takes input {!r} of shape {}, got {}".format(
                    self._where(), spec.name, list(want), list(got)))
        outs = self.session.run(None, feed)
        return dict(zip(self.output_names, outs))

    def _where(self):
        return "<bytes>" if isinstance(self.onnx_path, bytes) else self.onnx_path

    def _deactivate(self):
        self.session = None
