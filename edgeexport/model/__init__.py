"""The detector and its checkpoint, shared by training, export and evaluation (host-side: torch, torchvision).

``build_ssdlite(meta)`` builds torchvision's own SSD for a ModelMeta; ``load_model(path)`` reads model.pth
(this project's format or torchvision's reference scripts'); ``describe_model(model, labels)`` gives an in-memory
torchvision SSDLite its ModelMeta; ``save_checkpoint`` writes model.pth atomically.
"""
from .checkpoint import describe_model, load_model, read_checkpoint, save_checkpoint
from .ssdlite import build_ssdlite, calibrate_batchnorm

__all__ = ["build_ssdlite", "calibrate_batchnorm", "describe_model", "load_model", "read_checkpoint",
           "save_checkpoint"]
