"""The ``pytorch`` row of ``evaluate``: the original model from its checkpoint, fed as it was trained (torchvision's
float resize, or nvinfer's 8-bit stretch for a model trained with ``--preprocess nvinfer``), post-processed by
torchvision's SSD itself. The reference every other row is measured against. Host-side (torch)."""
import numpy as np
import torch

from ..device.check.eval_rows import Row
from ..device.postprocess import Detections
from ..device.preprocess import scale_frame
from .checkpoint import check_bundle_model, load_model


class PyTorchRow(Row):
    name = "pytorch"

    def __init__(self, model_path, bundle, score_threshold):
        super(PyTorchRow, self).__init__()
        model, meta, _ = load_model(model_path)
        bundle_meta = bundle.meta
        if meta.labels != bundle_meta.model.labels:
            from ..device.errors import UsageError
            raise UsageError("{} has classes {}, the bundle {}: pass the checkpoint the bundle was exported "
                             "from".format(model_path, meta.labels, bundle_meta.model.labels))
        check_bundle_model(model, bundle_meta, model_path)
        self._use(model, meta, score_threshold)

    @classmethod
    def from_model(cls, model, meta, score_threshold, bundle_meta=None):
        """An in-memory torchvision SSD with its ModelMeta (checked against ``bundle_meta``'s weights digest)."""
        if bundle_meta is not None:
            check_bundle_model(model, bundle_meta, "the model passed")
        row = cls.__new__(cls)
        Row.__init__(row)
        row._use(model, meta, score_threshold)
        return row

    def _use(self, model, meta, score_threshold):
        self.model, self.meta, self.score_threshold = model, meta, float(score_threshold)
        self._saved = None

    def __enter__(self):
        # the model may be the caller's own (from_model): its mode and threshold are put back on exit
        self._saved = (self.model.training, self.model.score_thresh)
        self.model.eval()
        self.model.score_thresh = self.score_threshold
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            self.model.train(self._saved[0])
            self.model.score_thresh = self._saved[1]
            self._saved = None
        return False

    @torch.no_grad()
    def predict(self, image):
        h, w = self.meta.input_size
        scale = None
        if self.meta.preprocessing == "nvinfer":  # what it was trained on: the network-size 8-bit stretch
            image, scale = scale_frame(image, w, h, 1)
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
        out = self.model([x])[0]
        boxes = out["boxes"].numpy()
        if scale is not None:  # back from the network input to the image
            boxes = boxes / np.asarray([scale.ratio_x, scale.ratio_y] * 2, np.float32)
        return Detections(boxes, out["scores"].numpy(), out["labels"].numpy() - 1)
