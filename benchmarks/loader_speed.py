"""The training input pipeline alone, per loader worker: images per second that the trainer's DataLoader hands
over for each ``--decode``, from a folder of JPEG photos, with no training step behind it.

    python -m edgeexport.data.make_voc /tmp/voc --train 2048 --val 16
    python benchmarks/loader_speed.py --data-path /tmp/voc --workers 0 4 --json out.json

Rows per decode and worker count: images/s in all and per worker (``--workers 0``: the main process alone, one
core: the per-core cost; torch is held to one thread, as in a loader worker). ``cpu``: decode, SSD's IoU crop,
resize to 320x320 and flip in the worker; ``cpu-v2``: the same through PIL and torchvision's v2 transforms;
``gpu``: what the workers do for --decode gpu (read the bytes, draw the augmentation); on a CUDA machine, then
``gpu main``: the other half, what the trainer's batch-preparing thread does with each batch (nvJPEG decode,
crop, resize, flip: train/gpu_input.py::decode_batch), timed alone on batches collected beforehand;
``cpu+gpucrop`` (--decode cpu --crop-on gpu): the workers decode, draw the augmentation and cut the crops out, and
on a CUDA machine ``cpu+gpucrop main``: the copy to the GPU, resize and flip there; ``cpu+reduced``
(--decode-scale reduced): ``cpu`` with big JPEGs decoded at the DCT scale their crop allows (and with +gpucrop).
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edgeexport.device.cli import (ArgumentParser, batch_size, image_count, iterations, output_file,  # noqa: E402
                                   run_cli, worker_count)

DECODES = ("cpu-v2", "cpu", "gpu", "cpu+gpucrop", "cpu+reduced", "cpu+reduced+gpucrop")
ON_THE_GPU = ("gpu", "cpu+gpucrop", "cpu+reduced+gpucrop")  # decodes whose batches the main process finishes on the GPU


def loader_for(voc, decode, batch, workers):
    from benchmarks.train_speed import jpeg_loader, row_input
    # the GPU decodes' worker half runs without a GPU: only the main process's to_device (never called here) needs one
    device = torch.device("cuda" if decode in ON_THE_GPU else "cpu")
    flag, _, crop_on, decode_scale = row_input(decode)
    return jpeg_loader(voc, flag, batch, workers, device, False, 0.0, crop_on, decode_scale)[1]


def measure(loader, batches, warmup):
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return time.perf_counter() - t


def pinned(batch, pin=lambda t: t.pin_memory()):
    """An EncodedBatch with its tensors in pinned memory, as the trainer's loader (pin_memory=True) hands it over;
    its other fields (the files' paths, a tuple) as they are."""
    return type(batch)(*(pin(t) if isinstance(t, torch.Tensor) else t for t in batch))


def decode_rate(voc, decode, batch, batches):
    """images/s of decode_batch on the GPU for ``batches`` collated batches of ``decode`` (two more first, untimed:
    nvJPEG's set-up and the allocator's first blocks), from pinned memory as the trainer's loader hands them."""
    from edgeexport.train.gpu_input import decode_batch
    device = torch.device("cuda")
    it = iter(loader_for(voc, decode, batch, 0))
    collated = [pinned(next(it)) for _ in range(batches + 2)]
    for b in collated[:2]:
        decode_batch(b, (320, 320), device)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for b in collated[2:]:
        decode_batch(b, (320, 320), device)
    torch.cuda.synchronize()
    return batches * batch / (time.perf_counter() - t)


def stage_costs(voc, samples):
    """ms a sample of each stage of --decode cpu in this process (one thread, as in a worker), each timed over the
    same ``samples`` images: reading the file, decoding it (at full size, and at each DCT scale), drawing the
    augmentation, cutting out the crop (the copy --crop-on gpu ships), resizing and flipping it (what --crop-on gpu
    leaves to the GPU), and the whole sample as a worker makes it, at full scale and with --decode-scale reduced."""
    import numpy as np
    from edgeexport.train.decoded_crops import DCT_SCALES, DecodedCrops, crop_resize_flip, decode_rgb
    from torchvision.io import ImageReadMode, decode_image
    data = DecodedCrops(voc, "ssdlite", (320, 320))
    reduced = DecodedCrops(voc, "ssdlite", (320, 320), reduced=True)  # the same draws, --decode-scale reduced
    n = min(samples, len(data))
    paths = [data.items[i][0] for i in range(n)]
    raw = [torch.from_numpy(np.fromfile(p, np.uint8)) for p in paths]
    images = [decode_rgb(p) for p in paths]
    draws = [data.augment(i, im.shape[2], im.shape[1]) for i, im in enumerate(images)]

    def cut(i):
        left, top, w, h = draws[i][0]
        return images[i][:, top:top + h, left:left + w].permute(1, 2, 0).contiguous()
    stages = [("read", lambda i: np.fromfile(paths[i], np.uint8)),
              ("decode", lambda i: decode_image(raw[i], mode=ImageReadMode.RGB)),
              ("draw", lambda i: data.augment(i, images[i].shape[2], images[i].shape[1])),
              ("cut out", cut),
              ("resize+flip", lambda i: crop_resize_flip(images[i], draws[i][0], draws[i][1], (320, 320))),
              ("whole sample", lambda i: data[i]),
              ("reduced sample", lambda i: reduced[i])]
    # the decode alone at each DCT scale (--decode-scale reduced's decoder), whatever the crops would allow
    stages[2:2] = [("decode 1/{}".format(scale), scaled_decode(raw, scale)) for scale in sorted(DCT_SCALES)]
    out = {}
    for name, fn in stages:
        fn(0)
        t = time.perf_counter()
        for i in range(n):
            fn(i)
        out[name] = (time.perf_counter() - t) / n * 1e3
        print("stage {:<14} {:>7.3f} ms a sample".format(name, out[name]), flush=True)
    return out


def scaled_decode(raw, scale):
    """A stage: file i's bytes decoded at 1/``scale`` (decoded_crops.scaled_decode, reduced_crop's decode)."""
    from edgeexport.train import decoded_crops
    arrays = [r.numpy() for r in raw]
    return lambda i: decoded_crops.scaled_decode(arrays[i], scale)


def get_args_parser(add_help=True):
    p = ArgumentParser(description="Training input pipeline throughput per loader worker, from a JPEG folder.",
                       add_help=add_help)
    p.add_argument("--data-path", required=True, help="a VOC folder of JPEGs (python -m edgeexport.data.make_voc)")
    p.add_argument("--decodes", nargs="+", default=list(DECODES), choices=DECODES)
    p.add_argument("--workers", type=worker_count, nargs="+", default=[0, min(4, os.cpu_count() or 1)])
    p.add_argument("-b", "--batch-size", type=batch_size, default=64)
    p.add_argument("--batches", type=iterations, default=8, help="timed batches per row")
    p.add_argument("--stages", type=image_count, metavar="N",
                   help="also time --decode cpu's stages one by one, each over the same N images")
    p.add_argument("--json", type=output_file, help="write the table here")
    return p


def main(args):
    from benchmarks.stats import json_output, write_json
    from edgeexport.data import VOCDetection
    outputs = json_output(args.json, reads=[args.data_path])
    torch.set_num_threads(1)  # what a DataLoader worker runs with
    voc = VOCDetection(args.data_path)
    rows = []
    for decode in args.decodes:
        for workers in args.workers:
            # with workers, warm up a batch per worker so that each has started, then time enough batches for all
            warm = max(1, workers)
            n = max(args.batches, 2 * workers)
            seconds = measure(loader_for(voc, decode, args.batch_size, workers), n, warm)
            ips = n * args.batch_size / seconds
            row = {"decode": decode, "workers": workers, "images_per_s": ips,
                   "images_per_s_per_worker": ips / max(workers, 1), "batch": args.batch_size}
            rows.append(row)
            print("--decode {decode:<11} workers {workers:>3}  {images_per_s:>8.1f} img/s  "
                  "{images_per_s_per_worker:>7.1f} img/s per worker".format(**row), flush=True)
        if decode in ON_THE_GPU and torch.cuda.is_available():
            row = {"decode": decode + " main", "images_per_s": decode_rate(voc, decode, args.batch_size, args.batches),
                   "batch": args.batch_size}
            rows.append(row)
            print("--decode {} main (decode_batch on the GPU)  {:>8.1f} img/s".format(decode, row["images_per_s"]),
                  flush=True)
    stages = stage_costs(voc, args.stages) if args.stages else None
    env = {"cpu_count": os.cpu_count(), "torch": torch.__version__, "images": len(voc),
           "image_size": list(__import__("PIL.Image", fromlist=["Image"]).open(voc.items[0][0]).size)}
    write_json(outputs, args.json, {"env": env, "rows": rows, "stages_ms": stages})
    return 0


if __name__ == "__main__":
    run_cli(get_args_parser, main)
