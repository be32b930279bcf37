"""--decode cpu's one-pass samples against torchvision's v2 pipeline, and SSD's crop drawn as numbers against
torchvision's RandomIoUCrop."""
import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2 as T
from torchvision.transforms.v2 import functional as TF

from edgeexport.data import VOCDetection
from edgeexport.data.common import read_rgb
from edgeexport.device.errors import DatasetError
from edgeexport.train.decoded_crops import DecodedCrops, decode_rgb
from edgeexport.train.ssd_crop import draw, iou_crop
from edgeexport.train.transforms import collate_batch


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    from edgeexport.data.make_voc import write_voc
    root = str(tmp_path_factory.mktemp("voc") / "voc")
    write_voc(root, train=6, val=1, size=(240, 180), classes=3)
    return VOCDetection(root, split="train")


def v2_sample(path, boxes, labels, crop, flip, size):
    """torchvision's v2 ops with the given crop and flip, in the order of the ssdlite preset (the transforms the
    cpu-v2 path composes): PIL decode, crop, flip, Resize(antialias=False) on uint8, SanitizeBoundingBoxes; with
    one deliberate difference, a clamp to the image before sanitizing (edgeexport.train.ssd_crop.scale_and_sanitize
    says why; test_torchvision_drops_a_box_that_rounding_pushes_past_the_edge holds the reason)."""
    img = read_rgb(path)
    h, w = img.shape[:2]
    image = tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous())
    bb = tv_tensors.BoundingBoxes(torch.from_numpy(np.asarray(boxes, np.float32)), format="XYXY", canvas_size=(h, w))
    target = {"boxes": bb, "labels": torch.from_numpy(np.asarray(labels, np.int64))}
    left, top, cw, ch, inside = crop
    if (left, top, cw, ch) != (0, 0, w, h):
        image, target["boxes"] = TF.crop(image, top, left, ch, cw), TF.crop(target["boxes"], top, left, ch, cw)
        target["boxes"][~torch.from_numpy(inside)] = 0  # RandomIoUCrop marks the boxes outside as degenerate
    if flip:
        image, target["boxes"] = TF.horizontal_flip(image), TF.horizontal_flip(target["boxes"])
    image, target["boxes"] = TF.resize(image, list(size), antialias=False), TF.resize(target["boxes"], list(size))
    target["boxes"] = TF.clamp_bounding_boxes(target["boxes"])
    return T.Compose([T.SanitizeBoundingBoxes(), T.ToPureTensor()])(image, target)


def test_a_sample_equals_torchvisions_v2_ops_for_the_same_crop_and_flip(voc):
    """Pixel for pixel (both decoders are libjpeg-turbo with its defaults), boxes to float rounding, the same
    labels, over every image, cropped and not, flipped and not."""
    size = (96, 128)
    data = DecodedCrops(voc, "ssdlite", size, seed=1)
    seen = set()
    for epoch in range(4):
        data.set_epoch(epoch)
        for i in range(len(voc)):
            path, boxes, labels = voc.items[i]
            w, h = 240, 180
            rng = np.random.default_rng([data.seed, epoch, i])
            (left, top, cw, ch), flip, _, _ = draw(rng, w, h, boxes, labels, "ssdlite")
            # the mask of kept boxes, as the draw decided it
            rng = np.random.default_rng([data.seed, epoch, i])
            crop = iou_crop(rng, w, h, np.asarray(boxes, np.float32))
            inside = crop[4] if crop is not None else np.ones(len(boxes), bool)
            image, target = data[i]
            ref_image, ref = v2_sample(path, boxes, labels, (left, top, cw, ch, inside), flip, size)
            assert image.dtype == torch.uint8 and tuple(image.shape) == (3,) + size
            assert torch.equal(image, ref_image), (i, epoch)
            assert torch.equal(target["labels"], ref["labels"])
            np.testing.assert_allclose(target["boxes"].numpy(), ref["boxes"].numpy(), atol=1e-4)
            seen.add(((left, top, cw, ch) != (0, 0, w, h), flip))
    assert seen == {(False, False), (False, True), (True, False), (True, True)}


def test_decode_rgb_equals_pil_and_falls_back_to_it(voc, tmp_path):
    path = voc.items[0][0]
    assert torch.equal(decode_rgb(path), torch.from_numpy(read_rgb(path)).permute(2, 0, 1))
    from PIL import Image
    tif = str(tmp_path / "x.tif")  # a format torchvision.io does not decode: PIL's turn
    Image.fromarray(np.full((5, 7, 3), 9, np.uint8)).save(tif)
    assert tuple(decode_rgb(tif).shape) == (3, 5, 7) and int(decode_rgb(tif)[0, 0, 0]) == 9
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="bad.jpg"):
        decode_rgb(str(bad))


def test_an_unreadable_image_is_one_bad_sample_not_a_traceback(voc, tmp_path):
    from edgeexport.train.transforms import BadSample
    data = DecodedCrops(voc, "hflip", (64, 64))
    data.items = [(str(tmp_path / "missing.jpg"),) + tuple(voc.items[0][1:])]
    out = data[0]
    assert isinstance(out, BadSample) and "missing.jpg" in out.message


def test_what_it_refuses():
    from edgeexport.data import SyntheticShapes
    with pytest.raises(DatasetError, match="cpu-v2"):
        DecodedCrops(SyntheticShapes(4), "hflip", (64, 64))


def test_samples_collate_into_the_batched_steps_input(voc):
    data = DecodedCrops(voc, "ssdlite", (64, 64), seed=0)
    images, boxes, labels, valid = collate_batch([data[i] for i in range(len(voc))])
    assert images.shape == (len(voc), 3, 64, 64) and images.dtype == torch.uint8
    assert boxes.shape[:2] == labels.shape == valid.shape and valid.any()
    b = boxes[valid]
    assert float(b.min()) >= 0 and float(b[:, 0::2].max()) <= 64 and float(b[:, 1::2].max()) <= 64


def test_the_drawn_crop_has_torchvisions_distribution():
    """The 40 trials drawn at once against RandomIoUCrop drawing them one by one: over 3000 draws each on the same
    image and boxes, the share of "no crop", the mean crop side fractions and the mean number of boxes kept agree
    within 4 standard errors; every crop obeys the bounds and the IoU rule."""
    w, h = 400, 300
    boxes = np.array([[10, 10, 60, 80], [150, 100, 330, 260], [300, 20, 390, 70]], np.float32)
    n = 3000
    ours = [iou_crop(np.random.default_rng([7, k]), w, h, boxes) for k in range(n)]
    op = T.RandomIoUCrop()
    bb = tv_tensors.BoundingBoxes(torch.from_numpy(boxes), format="XYXY", canvas_size=(h, w))
    torch.manual_seed(0)
    theirs = []
    for _ in range(n):
        p = op.make_params([tv_tensors.Image(torch.zeros(3, h, w, dtype=torch.uint8)), bb])
        theirs.append(None if not p else (p["left"], p["top"], p["width"], p["height"], p["is_within_crop_area"].numpy()))

    def stats(draws):
        made = [d for d in draws if d is not None]
        return np.array([[d is None, 1.0 if d is None else d[2] / float(w), 1.0 if d is None else d[3] / float(h),
                          len(boxes) if d is None else d[4].sum()] for d in draws], np.float64), made

    a, made = stats(ours)
    b, _ = stats(theirs)
    se = np.sqrt(a.var(0) / n + b.var(0) / n)
    assert np.all(np.abs(a.mean(0) - b.mean(0)) <= 4 * se + 1e-9), (a.mean(0), b.mean(0), se)
    from torchvision.ops import box_iou
    for left, top, cw, ch, inside in made:
        assert 0 <= left and left + cw <= w and 0 <= top and top + ch <= h and 0.5 <= cw / float(ch) <= 2.0
        assert cw >= int(w * 0.3) and ch >= int(h * 0.3) and inside.any()
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        assert np.array_equal(inside, (left < cx) & (cx < left + cw) & (top < cy) & (cy < top + ch))
    # the IoU rule, checked against torchvision's box_iou: a crop that passes overlaps a kept box by >= 0.9 at
    # times (the strictest option), and never does a crop pass with every kept box below 0 overlap
    best = [float(box_iou(torch.from_numpy(boxes[d[4]]), torch.tensor([[d[0], d[1], d[0] + d[2], d[1] + d[3]]],
                                                                      dtype=torch.float32)).max()) for d in made]
    assert max(best) >= 0.9 and min(best) > 0


def test_torchvision_drops_a_box_that_rounding_pushes_past_the_edge():
    """Why the boxes are clamped after scaling: a box reaching the bottom of an 84-pixel-high crop, resized to 96,
    comes out of torchvision's Resize just beyond 96 (float32), and SanitizeBoundingBoxes removes it."""
    from edgeexport.train.ssd_crop import scale_and_sanitize
    box = torch.tensor([[0.0, 40.0, 40.0, 84.0]])
    bb = tv_tensors.BoundingBoxes(box, format="XYXY", canvas_size=(84, 100))
    resized = TF.resize(bb, [96, 128])
    assert float(resized[0, 3]) > 96
    _, out = T.SanitizeBoundingBoxes()(torch.zeros(3, 96, 128), {"boxes": resized, "labels": torch.tensor([1])})
    assert len(out["labels"]) == 0
    boxes, labels = scale_and_sanitize(box.numpy(), np.array([1]), (0, 0, 100, 84), (96, 128))
    assert list(labels) == [1] and float(boxes[0, 3]) == 96.0
