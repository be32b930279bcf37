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
