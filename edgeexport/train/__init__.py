"""The trainer (host-side: torch, torchvision): ``cli`` (``python -m edgeexport.train``), ``loop`` (an epoch,
an evaluation), ``transforms`` (augmentation presets), ``distributed`` (torchrun/DDP), ``coco_map`` (mAP)."""
