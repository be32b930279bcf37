"""Natural photographs that ship inside scikit-image (no download), for parity and calibration on the host."""
import numpy as np

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def natural_images(count=None):
    """uint8 RGB HWC photos of varied sizes; falls back to none if scikit-image is absent."""
    try:
        import skimage.data as data
    except ImportError:
        return []
    out = []
    for name in PHOTOS[:count]:
        try:
            im = np.asarray(getattr(data, name)())
        except Exception:  # a scikit-image build without that file: skip it, the others suffice
            continue
        if im.ndim == 3 and im.shape[2] == 3:
            out.append(np.ascontiguousarray(im))
    return out


def calibrate_batchnorm(model, images, size=None):
    """Give an untrained torchvision SSD realistic BatchNorm statistics by running images in train mode.

    An untrained network with default statistics answers almost the same whatever the input, which would make
    any parity test pass; after this its activations depend on the picture, as a trained model's do.
    """
    import torch
    import torch.nn.functional as F
    h, w = size or model.transform.fixed_size
    batch = torch.stack([F.interpolate(torch.from_numpy(im).permute(2, 0, 1)[None].float(), size=(h, w),
                                       mode="bilinear", align_corners=False)[0] / 255.0 for im in images])
    batch = torch.stack([model.transform.normalize(b) for b in batch])
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model.backbone(batch)
            model.head(list(model.backbone(batch).values()))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return model.eval()
