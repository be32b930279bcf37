"""A synthetic detection dataset generated on the fly: K classes of shapes on textured backgrounds.

Deterministic: image ``i`` of a dataset with seed ``s`` depends only on ``(s, i)``, so a train split and a
held-out split are two seeds. Boxes are exact: computed from the drawn geometry, not estimated.
"""
import cv2
import numpy as np

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "star", "diamond", "ring", "hexagon")


def _background(rng, h, w):
    """A textured background: gradient, stripes, checkerboard or smooth blobs, plus sensor-like noise.

    Built at a quarter of the resolution where the pattern allows and in float32: rendering competes with
    training for the same CPU cores, so it must cost far less than a training step.
    """
    kind = rng.integers(4)
    c1, c2 = rng.integers(0, 256, 3).astype(np.float32), rng.integers(0, 256, 3).astype(np.float32)
    if kind == 3:  # smooth blobs, made small and upscaled
        t = cv2.resize(rng.random((6, 6), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    else:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        if kind == 0:  # linear gradient
            a = rng.uniform(0, 2 * np.pi)
            t = (np.float32(np.cos(a) / w) * xx + np.float32(np.sin(a) / h) * yy + 1.0) * 0.5
        elif kind == 1:  # stripes
            period, a = rng.uniform(8, 40), rng.uniform(0, np.pi)
            t = (np.sin(np.float32(np.cos(a) * 2 * np.pi / period) * xx
                        + np.float32(np.sin(a) * 2 * np.pi / period) * yy) + 1.0) * 0.5
        else:  # checkerboard
            p = np.float32(rng.integers(10, 50))
            t = ((np.floor(xx / p) + np.floor(yy / p)) % 2).astype(np.float32)
    img = c1 + (c2 - c1) * t[..., None]
    noise = cv2.resize(rng.standard_normal((h // 2 + 1, w // 2 + 1, 3), dtype=np.float32), (w, h),
                       interpolation=cv2.INTER_NEAREST)
    img += noise * np.float32(rng.uniform(2, 14))
    return np.clip(img, 0, 255).astype(np.uint8)


def _polygon(shape, cx, cy, r, angle):
    def ring(n, radius, phase=0.0):
        t = angle + phase + np.arange(n) * 2 * np.pi / n
        return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], 1)

    if shape == "square":
        return ring(4, r, np.pi / 4)
    if shape == "triangle":
        return ring(3, r, -np.pi / 2)
    if shape == "diamond":
        pts = ring(4, r)
        pts[:, 0] = cx + (pts[:, 0] - cx) * 0.6
        return pts
    if shape == "hexagon":
        return ring(6, r)
    if shape == "star":
        outer, inner = ring(5, r, -np.pi / 2), ring(5, r * 0.45, -np.pi / 2 + np.pi / 5)
        return np.stack([outer, inner], 1).reshape(-1, 2)
    if shape == "cross":
        a, b = r, r * 0.35
        pts = np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a], [-b, b], [-a, b],
                        [-a, -b], [-b, -b]])
        c, s = np.cos(angle), np.sin(angle)
        return np.stack([cx + pts[:, 0] * c - pts[:, 1] * s, cy + pts[:, 0] * s + pts[:, 1] * c], 1)
    raise ValueError("not a polygon shape: {}".format(shape))


def draw_shape(img, shape, cx, cy, r, angle, color):
    """Draw one shape; returns its exact box (x1, y1, x2, y2) clipped to the image."""
    h, w = img.shape[:2]
    color = tuple(int(c) for c in color)
    if shape == "circle":
        cv2.circle(img, (int(round(cx * 16)), int(round(cy * 16))), int(round(r * 16)), color, -1, cv2.LINE_AA,
                   shift=4)
        x1, y1, x2, y2 = cx - r, cy - r, cx + r, cy + r
    elif shape == "ring":  # OpenCV centres the stroke on the radius: draw it inside r so the box stays exact
        thickness = max(2, int(r * 0.3))
        cv2.circle(img, (int(round(cx * 16)), int(round(cy * 16))), int(round((r - thickness / 2.0) * 16)), color,
                   thickness, cv2.LINE_AA, shift=4)
        x1, y1, x2, y2 = cx - r, cy - r, cx + r, cy + r
    else:
        pts = _polygon(shape, cx, cy, r, angle)
        cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], color, cv2.LINE_AA, shift=4)
        x1, y1 = pts.min(0)
        x2, y2 = pts.max(0)
    return [max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)]


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-9)


_PHOTOS = []


def natural_background(rng, h, w):
    """A random crop of one of scikit-image's photographs (colour, and greyscale made RGB), flipped and tinted:
    backgrounds with natural texture and clutter, where the textured ones are regular."""
    if not _PHOTOS:
        import skimage.data as data
        for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
                     "retina", "camera", "brick", "grass", "gravel", "moon", "coins", "clock", "horse"):
            try:
                im = np.asarray(getattr(data, name)())
            except Exception:  # a scikit-image build without that file: the others suffice
                continue
            im = np.repeat(im[..., None], 3, 2) if im.ndim == 2 else im[..., :3]
            _PHOTOS.append(np.ascontiguousarray(im.astype(np.uint8)))
    photo = _PHOTOS[int(rng.integers(len(_PHOTOS)))]
    ph, pw = photo.shape[:2]
    frac = rng.uniform(0.35, 1.0)
    ch, cw = max(16, int(ph * frac)), max(16, int(pw * frac * rng.uniform(0.8, 1.25)))
    ch, cw = min(ch, ph), min(cw, pw)
    y, x = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    img = cv2.resize(photo[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    tint = rng.uniform(0.75, 1.25, 3).astype(np.float32)
    return np.clip(img.astype(np.float32) * tint, 0, 255).astype(np.uint8)


def render_scene(rng, h, w, labels, max_objects=4, min_size=0.12, max_size=0.45, natural=False):
    """One image with 1..max_objects non-overlapping shapes, on a textured background or (``natural``) a
    photograph. Returns (img, boxes [N,4], labels [N] in 1..K)."""
    img = natural_background(rng, h, w) if natural else _background(rng, h, w)
    boxes, classes = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            k = int(rng.integers(len(labels)))
            r = rng.uniform(min_size, max_size) * min(h, w) / 2
            cx, cy = rng.uniform(r * 0.6, w - r * 0.6), rng.uniform(r * 0.6, h - r * 0.6)
            probe = [cx - r, cy - r, cx + r, cy + r]
            if all(_iou(probe, b) < 0.1 for b in boxes):
                break
        else:
            continue
        # Colour far from the local background so that the task is about shape, with some hard cases kept.
        bg = img[int(np.clip(cy, 0, h - 1)), int(np.clip(cx, 0, w - 1))].astype(int)
        color = rng.integers(0, 256, 3)
        if np.abs(color - bg).sum() < 120:
            color = 255 - bg
        box = draw_shape(img, labels[k], cx, cy, r, rng.uniform(0, 2 * np.pi), color)
        if box[2] - box[0] >= 4 and box[3] - box[1] >= 4:
            boxes.append(box)
            classes.append(k + 1)
    return img, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(classes, np.int64)


_PRERENDERING = None  # the dataset SyntheticShapes.prerender's forked workers render from


def _render_in_worker(index):
    return _PRERENDERING._render(index)


class SyntheticShapes(object):
    """``length`` images of ``num_classes`` shape classes; sizes vary in [min_side, max_side] unless fixed."""

    def __init__(self, length=2000, num_classes=3, seed=0, image_size=None, min_side=256, max_side=480,
                 max_objects=4, cache=False):
        if not 1 <= num_classes <= len(SHAPE_CLASSES):
            raise ValueError("num_classes must be in 1..{}, got {}".format(len(SHAPE_CLASSES), num_classes))
        if length < 1:
            raise ValueError("length must be >= 1, got {}".format(length))
        self.length, self.seed, self.image_size = int(length), int(seed), image_size
        self.min_side, self.max_side, self.max_objects = int(min_side), int(max_side), int(max_objects)
        self.labels = list(SHAPE_CLASSES[:num_classes])
        self.issues = []
        # Rendering costs about as much CPU as a training step of SSDLite-Small: a single-process loader can
        # keep the rendered images (about 0.3 MB each at 320x320) instead of drawing them every epoch.
        self._cache = {} if cache else None

    def __len__(self):
        return self.length

    def prerender(self, processes=1):
        """Render every image once, in ``processes`` processes, and keep them: loader workers started afterwards
        share them (fork, copy-on-write) instead of drawing each image every epoch."""
        if self._cache is None:
            self._cache = {}
        todo = [i for i in range(self.length) if i not in self._cache]
        if processes > 1 and len(todo) > 64:
            import concurrent.futures
            import multiprocessing
            from ..device.errors import DatasetError
            # concurrent.futures, not multiprocessing.Pool: a worker killed under it (the OOM killer, say) breaks
            # the pool with an error, where Pool.map would wait for the lost chunk forever.
            # The workers find the dataset in a global they inherit by fork, and only indices cross the pipe:
            # mapping the bound method would pickle self, cache and all, into every task, and the executor
            # pickles tasks lazily while the loop below fills that cache (quadratic: 2,048 images took 45 s in 7
            # processes, where one process renders them in 6 s)
            global _PRERENDERING
            _PRERENDERING = self
            try:
                with concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context(
                        "fork")) as pool:
                    for i, item in zip(todo, pool.map(_render_in_worker, todo, chunksize=32)):
                        self._cache[i] = item
            except concurrent.futures.process.BrokenProcessPool as e:
                raise DatasetError("rendering the synthetic set in {} processes: a worker died ({}); lower "
                                   "--workers or free memory".format(processes, e))
            finally:
                _PRERENDERING = None
        else:
            for i in todo:
                self._cache[i] = self._render(i)
        return self

    def _render(self, index):
        rng = np.random.default_rng([self.seed, index])
        if self.image_size:
            h, w = self.image_size
        else:
            h, w = (int(v) for v in rng.integers(self.min_side, self.max_side + 1, 2))
        return render_scene(rng, h, w, self.labels, self.max_objects)

    def __getitem__(self, index):
        if not 0 <= index < self.length:
            raise IndexError(index)
        if self._cache is not None and index in self._cache:
            img, boxes, labels = self._cache[index]
            return img.copy(), {"boxes": boxes.copy(), "labels": labels.copy(), "image_id": index}
        img, boxes, labels = self._render(index)
        if self._cache is not None:
            self._cache[index] = (img, boxes, labels)
            img, boxes, labels = img.copy(), boxes.copy(), labels.copy()
        return img, {"boxes": boxes, "labels": labels, "image_id": index}
