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


# --decode-scale reduced: big JPEGs decoded at the DCT scale their crop allows

def draft_rgb(path, scale):
    """uint8 [H, W, 3]: Pillow's reading of a JPEG at 1/scale (Image.draft: libjpeg's DCT scaling), a second
    reader of the same pixels as OpenCV's IMREAD_REDUCED_COLOR_s."""
    from PIL import Image
    with Image.open(path) as im:
        if scale > 1:
            im.draft("RGB", (im.size[0] // scale, im.size[1] // scale))
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def big_voc(tmp_path_factory):
    """Photos of an odd size, big against a 160x200 input: the whole photo decodes at 1/4, a crop of half of each
    side at 1/2, one of 0.3 at full size."""
    from edgeexport.data.make_voc import write_voc
    root = str(tmp_path_factory.mktemp("bigvoc") / "voc")
    write_voc(root, train=5, val=1, size=(1101, 821), classes=3)
    return VOCDetection(root, split="train")


def test_a_reduced_decode_is_pillows_draft_at_that_scale_with_the_pixels_as_stored(tmp_path):
    """Baseline, progressive and greyscale files, and one with an EXIF quarter-turn tag (read as stored, as
    decode_rgb reads it), of an odd size: the last pixel row and column at 1/s (ceil) belong to the crop too."""
    from PIL import Image
    from edgeexport.train.decoded_crops import on_grid, reduced_crop, whole_jpeg
    rng = np.random.default_rng(0)
    base = np.kron(rng.integers(0, 256, (53, 67, 3)), np.ones((16, 16, 1)))[:821, :1001].astype(np.uint8)
    files = []
    for name, kw, im in (("base", {}, Image.fromarray(base)), ("prog", {"progressive": True}, Image.fromarray(base)),
                         ("grey", {}, Image.fromarray(base).convert("L"))):
        files.append(str(tmp_path / (name + ".jpg")))
        im.save(files[-1], quality=90, **kw)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the stored image is to be turned a quarter
    files.append(str(tmp_path / "exif.jpg"))
    Image.fromarray(base).save(files[-1], quality=90, exif=exif.tobytes())
    for path in files:
        data = np.fromfile(path, np.uint8)
        assert whole_jpeg(data) and not whole_jpeg(data[:-100])
        for scale in (2, 4, 8):
            ref = draft_rgb(path, scale)
            assert ref.shape[:2] == (-(-821 // scale), -(-1001 // scale))
            for crop in ((0, 0, 1001, 821), (37, 50, 700, 600), (300, 221, 701, 600)):
                left, top, cw, ch = on_grid(crop, scale)
                got = reduced_crop(data, scale, (left, top, cw, ch))
                want = ref[top // scale:(top + ch) // scale, left // scale:(left + cw) // scale]
                assert got.shape == want.shape and got.dtype == np.uint8, (path, scale, crop)
                assert np.array_equal(got, want), (path, scale, crop)


def test_the_scale_is_the_largest_that_keeps_the_crop_the_inputs_size_and_the_grid_moves_it_half_a_pixel():
    from edgeexport.train.decoded_crops import dct_scale, on_grid
    size = (96, 128)
    assert dct_scale((0, 0, 1024, 768), size) == 8 and dct_scale((0, 0, 1023, 768), size) == 4
    assert dct_scale((5, 5, 256, 192), size) == 2 and dct_scale((5, 5, 255, 900), size) == 1
    rng = np.random.default_rng(1)
    for _ in range(500):
        w, h = (int(v) for v in rng.integers(300, 3000, 2))
        cw, ch = int(rng.integers(1, w + 1)), int(rng.integers(1, h + 1))
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        scale = dct_scale((left, top, cw, ch), size)
        assert scale == 1 or (cw >= scale * size[1] and ch >= scale * size[0])
        assert scale == 8 or cw < 2 * scale * size[1] or ch < 2 * scale * size[0]
        l2, t2, cw2, ch2 = on_grid((left, top, cw, ch), scale)
        assert all(v % scale == 0 for v in (l2, t2, cw2, ch2))
        for a, b in ((l2, left), (t2, top), (l2 + cw2, left + cw), (t2 + ch2, top + ch)):
            assert abs(a - b) <= scale // 2
        assert l2 + cw2 <= -(-w // scale) * scale and t2 + ch2 <= -(-h // scale) * scale  # inside the decoded image


def test_reduced_samples_are_the_same_draws_decoded_at_their_scale(big_voc):
    """Each sample: the crop and flip the full decode draws, moved onto the scale's grid, cut from Pillow's draft at
    that scale, resized as the full path resizes; its boxes those of the full path within the grid's half pixel."""
    import torch.nn.functional as F
    from edgeexport.train.decoded_crops import dct_scale, on_grid
    size = (160, 200)
    full = DecodedCrops(big_voc, "ssdlite", size, seed=2)
    reduced = DecodedCrops(big_voc, "ssdlite", size, seed=2, reduced=True)
    scales = set()
    for epoch in range(6):
        full.set_epoch(epoch)
        reduced.set_epoch(epoch)
        for i in range(len(big_voc)):
            path, boxes, labels = big_voc.items[i]
            drawn, flip, _, _ = draw(np.random.default_rng([2, epoch, i]), 1101, 821, boxes, labels, "ssdlite")
            scale = dct_scale(drawn, size)
            left, top, cw, ch = on_grid(drawn, scale)
            pixels = draft_rgb(path, scale)[top // scale:(top + ch) // scale, left // scale:(left + cw) // scale]
            want = F.interpolate(torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None], size=size, mode="bilinear",
                                 align_corners=False, antialias=False)[0]
            image, target = reduced[i]
            assert torch.equal(image, want.flip(-1) if flip else want), (epoch, i, scale)
            _, ref = full[i]
            if torch.equal(target["labels"], ref["labels"]):
                tol = scale / 2.0 * max(size[1] / float(drawn[2]), size[0] / float(drawn[3])) + 1e-3
                np.testing.assert_allclose(target["boxes"].numpy(), ref["boxes"].numpy(), atol=tol)
            scales.add(scale)
    assert scales == {1, 2, 4}


def test_boxes_follow_the_pixels_of_a_reduced_decode():
    """A white rectangle on black in a big photo: wherever the crop and flip take it, and at whatever scale it is
    decoded, its box frames the white pixels."""
    import tempfile
    from PIL import Image
    from edgeexport.train.decoded_crops import dct_scale

    class One(object):
        pass
    with tempfile.TemporaryDirectory() as d:
        path = d + "/white.jpg"
        img = np.zeros((960, 1280, 3), np.uint8)
        img[240:640, 320:880] = 255
        Image.fromarray(img).save(path, quality=95)
        ds = One()
        ds.items = [(path, np.array([[320, 240, 880, 640]], np.float32), np.array([1]))]
        data = DecodedCrops(ds, "ssdlite", (64, 64), seed=3, reduced=True)
        seen = set()
        for epoch in range(40):
            data.set_epoch(epoch)
            image, target = data[0]
            if not len(target["boxes"]):
                continue
            x1, y1, x2, y2 = target["boxes"][0].tolist()
            white = (image.float().mean(0) > 127).nonzero()
            ys, xs = white[:, 0].float(), white[:, 1].float()
            assert abs(xs.min().item() - x1) <= 1.5 and abs(xs.max().item() + 1 - x2) <= 1.5, epoch
            assert abs(ys.min().item() - y1) <= 1.5 and abs(ys.max().item() + 1 - y2) <= 1.5, epoch
            drawn, flip, _, _ = draw(np.random.default_rng([3, epoch, 0]), 1280, 960, ds.items[0][1], [1], "ssdlite")
            seen.add((dct_scale(drawn, (64, 64)), flip))
    assert {s for s, _ in seen} >= {4, 8} and {f for _, f in seen} == {False, True}


def test_photos_too_small_for_a_scale_give_the_full_decodes_samples(voc):
    size = (96, 128)  # 240x180 photos: no crop of them covers twice the input
    full, reduced = DecodedCrops(voc, "ssdlite", size, seed=4), DecodedCrops(voc, "ssdlite", size, seed=4, reduced=True)
    for i in range(len(voc)):
        (a, ta), (b, tb) = full[i], reduced[i]
        assert torch.equal(a, b) and torch.equal(ta["boxes"], tb["boxes"]) and torch.equal(ta["labels"], tb["labels"])


def test_a_cut_short_or_unreadable_jpeg_is_named_as_the_full_decode_names_it(big_voc, tmp_path):
    from edgeexport.train.transforms import BadSample
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(open(big_voc.items[0][0], "rb").read()[:5000])
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8 not a jpeg \xff\xd9")
    for path in (cut, junk, tmp_path / "missing.jpg"):
        out = []
        for reduced in (False, True):
            data = DecodedCrops(big_voc, "hflip", (160, 200), reduced=reduced)
            data.items = [(str(path),) + tuple(big_voc.items[0][1:])]
            out.append(data[0])
        assert all(isinstance(o, BadSample) and path.name in o.message for o in out), out
        assert out[0].message == out[1].message
