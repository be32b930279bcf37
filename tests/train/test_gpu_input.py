"""--decode gpu's input path: bytes and augmentation drawn in the workers, decode/crop/resize/flip on the device.
Run here on the CPU (decode_jpeg has a CPU path); on a GPU the same code decodes with nvJPEG."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from edgeexport.data import VOCDetection
from edgeexport.device.errors import DatasetError
from edgeexport.train.gpu_input import EncodedDetection, collate_encoded, decode_batch, split_encoded
from edgeexport.train.ssd_crop import iou_crop
from edgeexport.train.transforms import BadSample


def test_iou_crop_keeps_boxes_whose_centre_is_inside_and_respects_the_bounds():
    rng = np.random.default_rng(0)
    boxes = np.array([[10, 10, 60, 60], [200, 100, 300, 200]], np.float32)
    crops = [iou_crop(rng, 400, 300, boxes) for _ in range(200)]
    made = [c for c in crops if c is not None]
    assert 0 < len(made) < 200  # "no crop" is one of the options
    for left, top, cw, ch, inside in made:
        assert 0 <= left and left + cw <= 400 and 0 <= top and top + ch <= 300
        assert cw >= int(400 * 0.3) and 0.5 <= cw / float(ch) <= 2.0 and inside.any()


def test_boxes_follow_the_pixels_through_decode_crop_resize_and_flip(tmp_path):
    """A white square on black: wherever augmentation takes it, its box must frame the white pixels."""
    from edgeexport.data.make_voc import write_voc  # a VOC folder to read through the real reader
    root = str(tmp_path / "voc")
    write_voc(root, train=1, val=1, size=(160, 120), classes=1, natural=False)
    ds = VOCDetection(root, split="train")
    path = ds.items[0][0]
    img = np.zeros((120, 160, 3), np.uint8)
    img[30:80, 40:110] = 255
    Image.fromarray(img).save(path, quality=100)
    ds.items[0] = (path, np.array([[40, 30, 110, 80]], np.float32), np.array([1]))
    data = EncodedDetection(ds, "ssdlite", (64, 64), seed=3)
    checked = set()
    for epoch in range(12):
        data.set_epoch(epoch)
        batch = collate_encoded([data[0]])
        images, boxes = decode_batch(batch, (64, 64), torch.device("cpu")), batch.boxes
        if not batch.valid.any():
            continue
        x1, y1, x2, y2 = boxes[0, 0].tolist()
        white = (images[0].mean(0) > 0.5).nonzero()
        ys, xs = white[:, 0].float(), white[:, 1].float()
        assert abs(xs.min().item() - x1) <= 2.5 and abs(xs.max().item() + 1 - x2) <= 2.5
        assert abs(ys.min().item() - y1) <= 2.5 and abs(ys.max().item() + 1 - y2) <= 2.5
        checked.add((tuple(batch.crops[0].tolist()) != (0, 0, 160, 120), bool(batch.flips[0])))
    assert (True, True) in checked and len(checked) >= 3  # cropped and flipped, among other combinations


def test_what_it_refuses(tmp_path):
    from edgeexport.data import SyntheticShapes
    with pytest.raises(DatasetError, match="renders its images"):
        EncodedDetection(SyntheticShapes(4), "hflip", (64, 64))
    with pytest.raises(DatasetError, match="photometric"):
        EncodedDetection(SyntheticShapes(4), "ssd", (64, 64))


@pytest.mark.gpu
@pytest.mark.slow
def test_decode_gpu_trains_hundreds_of_steps_at_batch_256_with_a_falling_finite_loss(tmp_path):
    """The configuration that diverged (SSDLite-Large, batch 256, bf16, nvJPEG): nvJPEG wrote into memory the
    training stream was still reading (edgeexport.train.gpu_input.decode_jpegs). ~200 steps: every epoch's loss is
    finite and the last is below the first."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (nvJPEG)")
    import re
    import subprocess
    import sys
    root = str(tmp_path / "voc")
    assert subprocess.run([sys.executable, "-m", "edgeexport.data.make_voc", root, "--train", "4096", "--val", "32",
                           "--size", "480", "360"], stdout=subprocess.DEVNULL).returncode == 0
    r = subprocess.run([sys.executable, "-m", "edgeexport.train", "--dataset", "voc", "--data-path", root,
                        "--train-split", "train", "--val-split", "val", "--arch", "ssdlite320_mobilenet_v3_large",
                        "--epochs", "13", "-b", "256", "--workers", "12", "--decode", "gpu", "--eval-every", "100",
                        "--no-progress", "--output-dir", str(tmp_path / "run")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:]
    losses = [float(m) for m in re.findall(r"^epoch\s+\d+\s+loss ([0-9.naninf]+)", r.stdout, re.M)]
    assert len(losses) == 13 and all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses


def test_the_decoded_batch_matches_the_cpu_paths_layout_range_and_boxes(tmp_path):
    """The same JPEG without augmentation through both input paths: [B, 3, H, W] at the model's size, pixels that
    agree to rounding once each path's scale is applied (the CPU path hands uint8 0..255, this one float 0..1:
    SSDTrainStep divides the former by 255), and the same boxes."""
    from edgeexport.data.make_voc import write_voc
    from edgeexport.train.transforms import TorchDetection, collate_batch, train_transform
    root = str(tmp_path / "voc")
    write_voc(root, train=3, val=1, size=(200, 150), classes=2, natural=False)
    ds = VOCDetection(root, split="train")
    size = (96, 128)
    cpu = collate_batch([TorchDetection(ds, train_transform("none", [0.5] * 3, None, size))[i] for i in range(3)])
    enc = EncodedDetection(ds, "none", size)
    b = collate_encoded([enc[i] for i in range(3)])
    images, boxes = decode_batch(b, size, torch.device("cpu")), b.boxes
    assert cpu[0].dtype == torch.uint8 and images.dtype == torch.float32
    assert tuple(images.shape) == tuple(cpu[0].shape) == (3, 3) + size
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    assert float((images * 255 - cpu[0].float()).abs().max()) <= 1.0  # uint8 rounding of the same bilinear resize
    assert torch.equal(b.valid, cpu[3]) and torch.equal(b.labels, cpu[2])
    np.testing.assert_allclose(boxes[b.valid].numpy(), cpu[1][cpu[3]].numpy(), atol=1e-3)


def test_the_batched_crop_and_resize_equals_the_cpu_paths_inside_the_crop(tmp_path):
    """decode_batch's roi_align against --decode cpu's F.interpolate of the cut-out crop, on the same decoded
    pixels and draws: within one level away from the crop's border (the CPU resizes uint8 with fixed-point
    weights), and on average within half a level including the border (where roi_align may blend in the pixel
    just outside the crop and interpolate repeats the border one)."""
    from edgeexport.data.make_voc import write_voc
    from edgeexport.train.decoded_crops import DecodedCrops
    root = str(tmp_path / "voc")
    write_voc(root, train=8, val=1, size=(200, 150), classes=2)
    ds = VOCDetection(root, split="train")
    size = (96, 128)
    enc, dec = EncodedDetection(ds, "ssdlite", size, seed=4), DecodedCrops(ds, "ssdlite", size, seed=4)
    cropped = 0
    for epoch in range(3):
        enc.set_epoch(epoch)
        dec.set_epoch(epoch)
        b = collate_encoded([enc[i] for i in range(len(ds))])
        ours = decode_batch(b, size, torch.device("cpu")) * 255
        cpu = torch.stack([dec[i][0] for i in range(len(ds))]).float()
        assert float((ours[..., 1:-1, 1:-1] - cpu[..., 1:-1, 1:-1]).abs().max()) <= 1.0 + 1e-3
        assert float((ours - cpu).abs().max()) <= 128
        assert float((ours - cpu).abs().mean()) <= 0.5
        np.testing.assert_array_equal(b.boxes.numpy(), collate_batch_boxes_at(dec, len(ds), 0))
        cropped += int((b.crops[:, 2:] != torch.tensor([200, 150])).any(1).sum())
    assert cropped > 0


def test_decoded_here_gives_every_batch_its_share_evenly_spread():
    from edgeexport.train.gpu_input import decoded_here
    for n in (1, 7, 64, 256):
        for share in (0.0, 0.1, 0.25, 0.3, 0.5, 0.9, 1.0):
            at = [j for j in range(n) if decoded_here(j, share)]
            assert len(at) == int(n * share), (n, share)
            if share and len(at) > 1:
                assert max(b - a for a, b in zip(at, at[1:])) <= int(1 / share) + 1, (n, share, at)


def test_a_share_decoded_by_the_workers_is_the_cpu_paths_sample_and_the_rest_is_unchanged(tmp_path):
    """A batch with half its samples decoded in the worker (EncodedDetection.__getitems__, what the loader's
    fetcher calls): those samples bit-equal --decode cpu's for the same draw, the others bit-equal the same
    positions of the all-nvJPEG batch, the targets identical; all of it (share 1) works without any file."""
    from edgeexport.data.make_voc import write_voc
    from edgeexport.train.decoded_crops import DecodedCrops
    root = str(tmp_path / "voc")
    write_voc(root, train=8, val=1, size=(200, 150), classes=2)
    ds = VOCDetection(root, split="train")
    size, cpu_device = (96, 128), torch.device("cpu")
    dec = DecodedCrops(ds, "ssdlite", size, seed=7)
    indices = [8 + i for i in (5, 0, 3, 7, 1, 6, 2, 4)]  # epoch 1, shuffled
    whole = collate_encoded(EncodedDetection(ds, "ssdlite", size, seed=7).__getitems__(indices))
    half = collate_encoded(EncodedDetection(ds, "ssdlite", size, seed=7, cpu_share=0.5).__getitems__(indices))
    assert not whole.on_cpu.any() and len(whole.decoded) == 0
    assert half.on_cpu.tolist() == [False, True] * 4 and len(half.ends) == 4 and len(half.decoded) == 4
    assert not half.flips[half.on_cpu].any()  # flipped in the worker already
    for name in ("boxes", "labels", "valid"):
        assert torch.equal(getattr(half, name), getattr(whole, name)), name
    ours, all_files = decode_batch(half, size, cpu_device), decode_batch(whole, size, cpu_device)
    cpu = torch.stack([dec[i][0] for i in indices]).float() / 255.0
    assert torch.equal(ours[half.on_cpu], cpu[half.on_cpu])
    assert torch.equal(ours[~half.on_cpu], all_files[~half.on_cpu])
    assert not torch.equal(ours, all_files)  # the worker's 8-bit resize is not roi_align's
    every = collate_encoded(EncodedDetection(ds, "ssdlite", size, seed=7, cpu_share=1.0).__getitems__(indices))
    assert every.on_cpu.all() and len(every.data) == 0 and len(every.ends) == 0
    assert torch.equal(decode_batch(every, size, cpu_device), cpu)


def test_the_loaders_workers_decode_the_share_of_each_batch(tmp_path):
    """torch's DataLoader hands a worker the whole batch's indices (__getitems__): each batch of 4 has 2 decoded."""
    from edgeexport.data.make_voc import write_voc
    root = str(tmp_path / "voc")
    write_voc(root, train=12, val=1, size=(96, 64), classes=2)
    enc = EncodedDetection(VOCDetection(root, split="train"), "hflip", (32, 32), cpu_share=0.5)
    loader = torch.utils.data.DataLoader(enc, 4, num_workers=2, collate_fn=collate_encoded)
    batches = list(loader)
    assert len(batches) == 3 and all(b.on_cpu.tolist() == [False, True, False, True] for b in batches)
    assert all(tuple(b.decoded.shape) == (2, 3, 32, 32) and b.decoded.dtype == torch.uint8 for b in batches)


@pytest.mark.parametrize("crop_on_gpu", [False, True])
def test_an_unreadable_file_in_the_workers_share_is_a_bad_sample(tmp_path, crop_on_gpu):
    from edgeexport.data.make_voc import write_voc
    root = str(tmp_path / "voc")
    write_voc(root, train=2, val=1, size=(96, 64), classes=2)
    ds = VOCDetection(root, split="train")
    with open(ds.items[1][0], "wb") as f:
        f.write(b"not a jpeg")
    enc = EncodedDetection(ds, "hflip", (32, 32), cpu_share=0.5, crop_on_gpu=crop_on_gpu)
    out = collate_encoded(enc.__getitems__([0, 1]))
    assert isinstance(out, BadSample) and ds.items[1][0] in out.message


def test_a_cpu_share_needs_the_gpu_decode(tmp_path):
    from edgeexport.data.make_voc import write_voc
    from edgeexport.device.errors import UsageError
    from edgeexport.device.meta import ModelMeta
    from edgeexport.train.train_input import build_train_input
    root = str(tmp_path / "voc")
    write_voc(root, train=2, val=1, size=(96, 64), classes=2)
    ds = VOCDetection(root, split="train")
    with pytest.raises(UsageError, match="needs --decode gpu, and this run decodes with cpu"):
        build_train_input(ds, ModelMeta("ssdlite320_mobilenet_v3_small", ds.labels), "cpu", "hflip", "torchvision",
                          True, 0, torch.device("cpu"), 0.3)
    with pytest.raises(DatasetError, match="from 0 to 1; got 1.5"):
        EncodedDetection(ds, "hflip", (32, 32), cpu_share=1.5)


def test_crops_cut_out_by_the_workers_resize_as_interpolate_resizes_each_crop():
    """resized_crops on packed crops of any size (one pixel, a thin strip, smaller and larger than the output)
    against F.interpolate of each crop alone, bilinear, align_corners False, in float."""
    import torch.nn.functional as F
    from edgeexport.train.gpu_input import packed, resized_crops
    g = torch.Generator().manual_seed(0)
    views = []
    for h, w in [(1, 1), (5, 9), (360, 480), (100, 33), (2, 400)]:
        image = torch.randint(0, 256, (h + 3, w + 5, 3), dtype=torch.uint8, generator=g)
        views.append(image[1:1 + h, 2:2 + w])  # a view with the image's strides, as a worker cuts it out
    flat = packed(views)
    assert flat.dim() == 1 and flat.numel() == sum(v.numel() for v in views)
    out = resized_crops(flat, torch.tensor([v.shape[:2] for v in views]), (64, 96), torch.device("cpu"))
    assert tuple(out.shape) == (5, 3, 64, 96) and out.dtype == torch.float32
    for v, o in zip(views, out):
        expected = F.interpolate(v.permute(2, 0, 1)[None].float(), size=(64, 96), mode="bilinear",
                                 align_corners=False)[0]
        assert float((o - expected).abs().max()) <= 1e-2
    assert resized_crops(torch.zeros(0, dtype=torch.uint8), torch.zeros((0, 2), dtype=torch.int64), (8, 8),
                         torch.device("cpu")).shape == (0, 3, 8, 8)


@pytest.mark.parametrize("share", [0.5, 1.0])
def test_crop_on_gpu_gives_the_cpu_paths_samples_to_8_bit_rounding_border_included(tmp_path, share):
    """--crop-on gpu: the workers' share cut out (flips still to do), resized by decode_batch: within one level of
    --decode cpu's sample for the same draw everywhere, the crop's border included (roi_align on whole images may
    differ there by far more); the files of the batch unchanged; the same targets."""
    from edgeexport.data.make_voc import write_voc
    from edgeexport.train.decoded_crops import DecodedCrops
    root = str(tmp_path / "voc")
    write_voc(root, train=8, val=1, size=(200, 150), classes=2)
    ds = VOCDetection(root, split="train")
    size, cpu_device = (128, 160), torch.device("cpu")  # every crop shipped (SHIP_AT_MOST)
    dec = DecodedCrops(ds, "ssdlite", size, seed=7)
    cpu = None
    flipped = 0
    for epoch in range(3):
        indices = [epoch * 8 + i for i in (5, 0, 3, 7, 1, 6, 2, 4)]
        whole = collate_encoded(EncodedDetection(ds, "ssdlite", size, seed=7).__getitems__(indices))
        cut = collate_encoded(EncodedDetection(ds, "ssdlite", size, seed=7, cpu_share=share,
                                               crop_on_gpu=True).__getitems__(indices))
        assert int(cut.cut.sum()) == int(8 * share) == len(cut.shapes) and not cut.on_cpu.any()
        assert len(cut.ends) == 8 - int(8 * share) and len(cut.decoded) == 0
        assert cut.pixels.numel() == int((cut.shapes[:, 0] * cut.shapes[:, 1]).sum()) * 3
        assert torch.equal(cut.flips, whole.flips)  # every flip still to do on the device
        flipped += int(cut.flips[cut.cut].sum())
        for name in ("boxes", "labels", "valid"):
            assert torch.equal(getattr(cut, name), getattr(whole, name)), name
        ours, all_files = decode_batch(cut, size, cpu_device) * 255, decode_batch(whole, size, cpu_device) * 255
        cpu = torch.stack([dec[i][0] for i in indices]).float()
        assert float((ours[cut.cut] - cpu[cut.cut]).abs().max()) <= 1.0 + 1e-3
        assert torch.equal(ours[~cut.cut], all_files[~cut.cut])
    assert flipped > 0


def test_crop_on_gpu_resizes_a_crop_much_larger_than_the_output_in_the_worker(tmp_path):
    """A crop of more than SHIP_AT_MOST output images' pixels (a big photo) is resized in the worker, as --decode
    cpu does, to the bit; smaller ones are shipped."""
    from edgeexport.data.make_voc import write_voc
    from edgeexport.train.decoded_crops import DecodedCrops
    from edgeexport.train.gpu_input import SHIP_AT_MOST
    root = str(tmp_path / "voc")
    write_voc(root, train=12, val=1, size=(200, 150), classes=2)
    ds = VOCDetection(root, split="train")
    size = (64, 64)  # 4,096 pixels: crops of 200x150 photos are 2,700 to 30,000
    enc = EncodedDetection(ds, "ssdlite", size, seed=2, cpu_share=1.0, crop_on_gpu=True)
    b = collate_encoded(enc.__getitems__(list(range(12))))
    big = torch.tensor([enc.augment(i, 200, 150)[0][2] * enc.augment(i, 200, 150)[0][3] > SHIP_AT_MOST * 64 * 64
                        for i in range(12)])
    assert big.any() and (~big).any() and torch.equal(b.on_cpu, big) and torch.equal(b.cut, ~big)
    ours = decode_batch(b, size, torch.device("cpu")) * 255
    cpu = torch.stack([DecodedCrops(ds, "ssdlite", size, seed=2)[i][0] for i in range(12)]).float()
    assert torch.equal(ours[big].round(), cpu[big])
    assert float((ours - cpu).abs().max()) <= 1.0 + 1e-3


def test_crop_on_gpu_with_a_reduced_decode_ships_the_reduced_crops(tmp_path):
    """--decode-scale reduced with --crop-on gpu: the crop decoded at its DCT scale is what is shipped (or resized in
    the worker when still big), and the device's resize gives --decode cpu's reduced sample within one level."""
    from edgeexport.data.make_voc import write_voc
    from edgeexport.train.decoded_crops import DecodedCrops
    root = str(tmp_path / "voc")
    write_voc(root, train=12, val=1, size=(700, 520), classes=2)
    ds = VOCDetection(root, split="train")
    size = (64, 64)
    enc = EncodedDetection(ds, "ssdlite", size, seed=5, cpu_share=1.0, crop_on_gpu=True, reduced=True)
    b = collate_encoded(enc.__getitems__(list(range(12))))
    assert b.cut.any() and b.on_cpu.any() and len(b.ends) == 0
    assert int(b.shapes.prod(1).max()) <= 2 * 64 * 64 < 520 * 700 // 4  # every shipped crop a reduced one
    ours = decode_batch(b, size, torch.device("cpu")) * 255
    cpu = torch.stack([DecodedCrops(ds, "ssdlite", size, seed=5, reduced=True)[i][0] for i in range(12)]).float()
    assert torch.equal(ours[b.on_cpu].round(), cpu[b.on_cpu])
    assert float((ours - cpu).abs().max()) <= 1.0 + 1e-3


def test_the_loaders_workers_cut_out_the_crops_of_each_batch(tmp_path):
    """Through torch's DataLoader with 2 workers (the batch built in shared memory there, transforms.batch_buffer):
    the same batches as collated in this process, and a folder of PNGs is fine (the workers decode every sample)."""
    from edgeexport.data.make_voc import write_voc
    root = str(tmp_path / "voc")
    write_voc(root, train=12, val=1, size=(96, 64), classes=2)
    ds = VOCDetection(root, split="train")
    for k, (path, boxes, labels) in enumerate(ds.items):
        png = path[:-4] + ".png"
        Image.open(path).save(png)
        ds.items[k] = (png, boxes, labels)
    with pytest.raises(DatasetError, match="decodes JPEG only"):
        EncodedDetection(ds, "hflip", (32, 32), cpu_share=0.5, crop_on_gpu=True)
    enc = EncodedDetection(ds, "hflip", (64, 64), cpu_share=1.0, crop_on_gpu=True)  # all shipped
    batches = list(torch.utils.data.DataLoader(enc, 4, num_workers=2, collate_fn=collate_encoded))
    assert len(batches) == 3
    for k, b in enumerate(batches):
        here = collate_encoded(enc.__getitems__(list(range(4 * k, 4 * k + 4))))
        assert b.cut.all() and len(b.ends) == 0 and tuple(b.shapes.shape) == (4, 2)
        for name in here._fields:
            if name != "paths":
                assert torch.equal(getattr(b, name), getattr(here, name)), name
        assert b.paths == here.paths == ()


@pytest.mark.parametrize("crop_on_gpu", [False, True])
def test_progressive_and_cmyk_files_are_decoded_by_the_worker(tmp_path, crop_on_gpu):
    """Files torchvision's batched nvJPEG call would decode one by one (progressive) or not convert to RGB (CMYK)
    are decoded in the worker, equal to --decode cpu's sample (or cut out for the GPU); baseline colour and grey
    files still go to nvJPEG; one cut short (no end-of-image marker) is the worker's to name."""
    from edgeexport.data.make_voc import write_voc
    from edgeexport.train.decoded_crops import DecodedCrops
    root = str(tmp_path / "voc")
    write_voc(root, train=4, val=1, size=(120, 90), classes=2)
    ds = VOCDetection(root, split="train")
    paths = [p for p, _, _ in ds.items]
    Image.open(paths[1]).save(paths[1], progressive=True, quality=90)
    Image.open(paths[2]).convert("CMYK").save(paths[2], quality=90)
    Image.open(paths[3]).convert("L").save(paths[3], quality=90)
    size = (64, 96)  # every crop of a 120x90 photo shipped with --crop-on gpu
    enc = EncodedDetection(ds, "hflip", size, seed=1, crop_on_gpu=crop_on_gpu)
    b = collate_encoded(enc.__getitems__([0, 1, 2, 3]))
    by_worker = b.cut if crop_on_gpu else b.on_cpu
    assert by_worker.tolist() == [False, True, True, False] and len(b.ends) == 2
    ours = decode_batch(b, size, torch.device("cpu")) * 255
    cpu = torch.stack([DecodedCrops(ds, "hflip", size, seed=1)[i][0] for i in range(4)]).float()
    assert float((ours[by_worker] - cpu[by_worker]).abs().max()) <= (1.0 + 1e-3 if crop_on_gpu else 1e-3)
    assert float((ours[3] - ours[3].mean(0)).abs().max()) <= 1e-3  # the grey file: three equal channels
    whole = np.fromfile(paths[0], np.uint8)
    whole[:len(whole) * 4 // 5].tofile(paths[0])
    out = collate_encoded(enc.__getitems__([0, 1, 2, 3]))
    assert isinstance(out, BadSample) and paths[0] in out.message


def test_a_file_the_batched_decode_refuses_is_read_on_the_cpu_or_named(tmp_path, monkeypatch):
    """A batch whose decode fails: each file alone, one the decoder still refuses read as --decode cpu reads it
    (here: a file only nvJPEG is made to refuse, equal to the CPU's decode), and one nothing reads a DatasetError
    naming it, as --decode cpu names it; an out-of-memory passes through untouched."""
    from edgeexport.data.make_voc import write_voc
    from edgeexport.train import gpu_input
    from edgeexport.train.decoded_crops import decode_rgb
    root = str(tmp_path / "voc")
    write_voc(root, train=3, val=1, size=(96, 64), classes=2)
    ds = VOCDetection(root, split="train")
    enc = EncodedDetection(ds, "none", (32, 48))
    batch = collate_encoded([enc[i] for i in range(3)])
    assert batch.paths == tuple(p for p, _, _ in ds.items)
    refused = batch.paths[1]
    refused_bytes = torch.from_numpy(np.fromfile(refused, np.uint8))
    real = gpu_input.decode_jpegs

    def refusing(data, device, chunk=None):
        if any(torch.equal(d, refused_bytes) for d in data):
            raise RuntimeError("nvJPEG status 4")
        return real(data, device, chunk)
    monkeypatch.setattr(gpu_input, "decode_jpegs", refusing)
    images = gpu_input.decoded_files(batch, torch.device("cpu"))
    assert len(images) == 3 and torch.equal(images[1], decode_rgb(refused))
    assert torch.equal(images[0], real(split_encoded(batch.data, batch.ends)[:1], torch.device("cpu"))[0])
    with open(refused, "wb") as f:  # changed since the worker read it: nothing reads it now
        f.write(b"not a jpeg")
    with pytest.raises(DatasetError, match="cannot read image .*" + os.path.basename(refused)):
        decode_batch(batch, (32, 48), torch.device("cpu"))

    def out_of_memory(data, device, chunk=None):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")
    monkeypatch.setattr(gpu_input, "decode_jpegs", out_of_memory)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        gpu_input.decoded_files(batch, torch.device("cpu"))


@pytest.mark.gpu
def test_odd_jpegs_through_nvjpeg_on_the_gpu(tmp_path):
    """On a GPU, the files a user's folder holds besides baseline colour JPEGs: grey, progressive, CMYK (the last two
    decoded by the workers), all within 2 levels on average of --decode cpu's samples; one cut short after its
    header goes to a worker too, which names it as --decode cpu does; one that nvJPEG is made to get anyway (its
    end-of-image marker put back after the cut) is named by decode_batch, or read (then within the same levels)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (nvJPEG)")
    from edgeexport.data.make_voc import write_voc
    from edgeexport.train.decoded_crops import DecodedCrops
    root = str(tmp_path / "voc")
    write_voc(root, train=8, val=1, size=(480, 360), classes=2)
    ds = VOCDetection(root, split="train")
    paths = [p for p, _, _ in ds.items]
    Image.open(paths[1]).convert("L").save(paths[1], quality=90)
    Image.open(paths[2]).save(paths[2], progressive=True, quality=90)
    Image.open(paths[3]).convert("CMYK").save(paths[3], quality=90)
    size, device = (320, 320), torch.device("cuda")
    enc = EncodedDetection(ds, "ssdlite", size, seed=3)
    batch = collate_encoded([enc[i] for i in range(8)])
    assert batch.on_cpu.tolist() == [False, False, True, True] + [False] * 4
    ours = (decode_batch(batch, size, device) * 255).cpu()
    cpu = torch.stack([DecodedCrops(ds, "ssdlite", size, seed=3)[i][0] for i in range(8)]).float()
    assert float((ours - cpu).abs().mean(dim=(1, 2, 3)).max()) <= 2.0
    whole = np.fromfile(paths[5], np.uint8)
    whole[:len(whole) * 4 // 5].tofile(paths[5])
    out = collate_encoded([enc[i] for i in range(8)])
    assert isinstance(out, BadSample) and paths[5] in out.message
    np.concatenate([whole[:len(whole) * 4 // 5], [0xFF, 0xD9]]).astype(np.uint8).tofile(paths[5])
    batch = collate_encoded([enc[i] for i in range(8)])
    assert not batch.on_cpu[5]
    try:  # what nvJPEG does with such a file is not documented: either answer is the CPU path's
        ours = (decode_batch(batch, size, device) * 255).cpu()
    except DatasetError as e:
        assert os.path.basename(paths[5]) in str(e)
    else:
        assert float((ours[:5] - cpu[:5]).abs().mean(dim=(1, 2, 3)).max()) <= 2.0


def test_what_crop_on_gpu_refuses(tmp_path):
    from edgeexport.data import SyntheticShapes
    from edgeexport.data.make_voc import write_voc
    from edgeexport.device.errors import UsageError
    from edgeexport.device.meta import ModelMeta
    from edgeexport.train.train_input import build_train_input
    root = str(tmp_path / "voc")
    write_voc(root, train=2, val=1, size=(96, 64), classes=2)
    ds = VOCDetection(root, split="train")
    meta = ModelMeta("ssdlite320_mobilenet_v3_small", ds.labels)
    cuda = torch.device("cuda")  # only checked, never used: every refusal comes first
    with pytest.raises(UsageError, match="takes --decode cpu or gpu; cpu-v2 crops"):
        build_train_input(ds, meta, "cpu-v2", "hflip", "torchvision", True, 0, cuda, 0.0, "gpu")
    with pytest.raises(UsageError, match="needs --loss batched and --preprocess torchvision"):
        build_train_input(ds, meta, "cpu", "hflip", "nvinfer", True, 0, cuda, 0.0, "gpu")
    with pytest.raises(UsageError, match="--crop-on gpu needs a CUDA device; this run is on cpu"):
        build_train_input(ds, meta, "cpu", "hflip", "torchvision", True, 0, torch.device("cpu"), 0.0, "gpu")
    with pytest.raises(DatasetError, match="--crop-on gpu reads image files"):
        EncodedDetection(SyntheticShapes(4), "hflip", (64, 64), cpu_share=1.0, crop_on_gpu=True)


def collate_batch_boxes_at(data, n, epoch):
    """The padded boxes --decode cpu collates for one epoch's samples (counted from data's set_epoch)."""
    from edgeexport.train.transforms import collate_batch
    return collate_batch([data[epoch * n + i] for i in range(n)])[1].numpy()


@pytest.mark.gpu
@pytest.mark.parametrize("decode,share,crop_on", [("gpu", 0.0, "cpu"), ("gpu", 0.5, "cpu"), ("gpu", 0.5, "gpu"),
                                                  ("cpu", 1.0, "gpu")])
def test_nvjpeg_batches_match_the_cpu_path_on_the_gpu(tmp_path, decode, share, crop_on):
    """On a GPU, through the trainer's own input (build_train_input, its DataLoader with 2 workers and its pinning
    thread, and the thread that prepares batches on a side stream): nvJPEG's images against --decode
    cpu's samples for the same draws, per image within 2 levels on average (nvJPEG and libjpeg-turbo differ by up to
    1.5, benchmarks/results/h200_decode_gpu_divergence.json); the workers' share equal to --decode cpu's to the bit,
    or with --crop-on gpu (their crops resized on the GPU) to its 8-bit rounding; the same boxes."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (nvJPEG)")
    from edgeexport.data.make_voc import write_voc
    from edgeexport.device.meta import ModelMeta
    from edgeexport.train.decoded_crops import DecodedCrops
    from edgeexport.train.gpu_input import decoded_here
    from edgeexport.train.train_input import build_train_input, input_timings, train_loader, training_stream
    from edgeexport.train.transforms import EpochsSampler, collate_batch
    root = str(tmp_path / "voc")
    write_voc(root, train=32, val=1, size=(480, 360), classes=3)
    ds = VOCDetection(root, split="train")
    n, device = len(ds), torch.device("cuda")
    source = build_train_input(ds, ModelMeta("ssdlite320_mobilenet_v3_large", ds.labels), decode, "ssdlite",
                               "torchvision", True, 2, device, share if decode == "gpu" else 0.0, crop_on)
    sampler = EpochsSampler(n, n, 0, 3, 2)
    stream = training_stream(train_loader(source, n, sampler, 2, True), True, source.to_device, device)
    on_gpu = list(stream)
    t = input_timings(stream, phases=source.phases)  # the preparing thread's phases, timed there, and decode_batch's
    assert len(on_gpu) == 3 and len(stream.spans) == 3 and t["prepare_ms"] > 0 and t["receive_ms"] >= 0
    assert len(source.phases) == 3 and t["decode_ms"] >= 0 and t["crop_ms"] > 0 and t["wait_ms"] >= 0
    assert t["decode_ms"] + t["crop_ms"] <= t["prepare_ms"] * 1.01
    dec = DecodedCrops(ds, "ssdlite", (320, 320), seed=2)
    indices = list(sampler)
    for e, (images, boxes, labels, valid) in enumerate(on_gpu):
        samples = [dec[i] for i in indices[e * n:(e + 1) * n]]
        cpu = torch.stack([x for x, _ in samples]).float()
        here = torch.tensor([decoded_here(j, share) for j in range(n)])
        assert int(here.sum()) == int(n * share)
        if crop_on == "cpu":
            # the same 8-bit levels (CUDA divides by a scalar as a multiplication by its reciprocal: an ulp apart)
            assert torch.equal((images[here.cuda()] * 255).round().cpu(), cpu[here])
        else:  # resized in float on the GPU, in 8 bits on the CPU
            assert float((images[here.cuda()] * 255 - cpu[here].cuda()).abs().max()) <= 1.0 + 1e-3
        diff = (images.cpu() * 255 - cpu).abs().mean(dim=(1, 2, 3))
        assert float(diff.max()) <= 2.0, diff
        expected = collate_batch(samples)
        assert torch.equal(boxes.cpu(), expected[1]) and torch.equal(valid.cpu(), expected[3])


def test_decode_batch_times_its_decode_and_its_crops(tmp_path):
    from edgeexport.data.make_voc import write_voc
    from edgeexport.train.train_input import input_timings
    root = str(tmp_path / "voc")
    write_voc(root, train=4, val=1, size=(160, 120), classes=2)
    enc = EncodedDetection(VOCDetection(root, split="train"), "ssdlite", (64, 64), seed=0)
    batch = collate_encoded([enc[i] for i in range(4)])
    spans = []
    for _ in range(3):
        decode_batch(batch, (64, 64), torch.device("cpu"), spans)
    assert len(spans) == 3 and all(d > 0 and c > 0 for d, c in spans)
    t = input_timings(object(), phases=spans)  # a stream without timings of its own: only the phases
    assert set(t) == {"decode_ms", "crop_ms"}


def test_nvjpeg_is_called_once_a_batch_or_in_chunks_and_every_image_comes_back_in_order(tmp_path, monkeypatch):
    """decode_jpegs: one call for the batch (the trainer's), or calls of at most ``chunk`` files (nvjpeg_overlap.py's
    --chunks), run here through torchvision's CPU decoder."""
    import torchvision.io
    from edgeexport.data.make_voc import write_voc
    from edgeexport.train import gpu_input
    root = str(tmp_path / "voc")
    write_voc(root, train=3, val=1, size=(48, 32), classes=2)
    paths = [p for p, _, _ in VOCDetection(root, split="train").items]
    files = [torch.from_numpy(np.fromfile(paths[i % 3], np.uint8)) for i in range(300)]
    real, calls = torchvision.io.decode_jpeg, []

    def counted(data, **kwargs):
        calls.append(len(data))
        return real(data, **kwargs)
    monkeypatch.setattr(torchvision.io, "decode_jpeg", counted)
    for chunk, expected in ((None, [300]), (128, [128, 128, 44]), (300, [300])):
        calls.clear()
        out = gpu_input.decode_jpegs(files, torch.device("cpu"), chunk)
        assert calls == expected, chunk
        assert len(out) == 300 and all(torch.equal(out[i], real(files[i % 3])) for i in range(300))
    calls.clear()
    assert gpu_input.decode_jpegs([], torch.device("cpu")) == [] and calls == []


def test_split_encoded_gives_each_file_back():
    files = [torch.arange(n, dtype=torch.uint8) for n in (3, 1, 5)]
    ends = torch.tensor([3, 4, 9])
    back = split_encoded(torch.cat(files), ends)
    assert len(back) == 3 and all(torch.equal(a, b) and a.is_contiguous() for a, b in zip(back, files))
