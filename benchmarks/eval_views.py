"""Held-out mAP of trained checkpoints, each on the same VOC photos seen three ways, to tell whether a model's mAP
depends on how the evaluation scales the photo down (RESULTS.md, ninth pass: does --decode-scale reduced lose mAP
because it trains on smoother pixels than the evaluation shows?).

    python benchmarks/eval_views.py --voc runs/converge/voc_big --checkpoints runs/converge/scale_*_?/last.pth \
        --json benchmarks/results/cpu2_decode_scale_eval_views.json

Views: ``full``: the photo decoded whole, then the model's own bilinear resize without antialiasing (what the
trainer's evaluation does, and nvinfer's scaling-filter=1 is bilinear too); ``reduced``: decoded at the DCT scale
(1/2, 1/4, 1/8) that the whole photo allows for the network's input, the way --decode-scale reduced decodes a crop,
then the same resize; ``antialias``: decoded whole and resized to the input with an antialiasing filter (area-like
smoothing, as the DCT scaling does, by another filter). Boxes come back to the photo's pixels before scoring.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edgeexport.device.cli import ArgumentParser, output_file, run_cli  # noqa: E402

VIEWS = ("full", "reduced", "antialias")


def viewed(path, image, view, size):
    """float [3, h, w] in 0..1: the photo at ``path`` (decoded whole as ``image``, uint8 HWC RGB) as ``view`` shows
    it to the model."""
    import torch.nn.functional as F
    from edgeexport.train.decoded_crops import dct_scale, scaled_decode
    if view == "reduced":
        h, w = image.shape[:2]
        scale = dct_scale((0, 0, w, h), size)
        if scale > 1:
            image = scaled_decode(np.fromfile(path, np.uint8), scale)[:, :, ::-1]  # BGR -> RGB
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255
    if view == "antialias":
        x = F.interpolate(x[None], size=tuple(size), mode="bilinear", align_corners=False, antialias=True)[0]
    return x


@torch.no_grad()
def view_map(model, meta, voc, view):
    from edgeexport.train.coco_map import coco_map
    gts, dts = [], []
    for i, (path, _, _) in enumerate(voc.items):
        image, target = voc[i]
        x = viewed(path, image, view, meta.input_size)
        out = model([x])[0]
        sx, sy = image.shape[1] / float(x.shape[-1]), image.shape[0] / float(x.shape[-2])
        gts.append({"boxes": target["boxes"], "labels": target["labels"]})
        dts.append({"boxes": out["boxes"].numpy() * np.array([sx, sy, sx, sy], np.float32),
                    "labels": out["labels"].numpy(), "scores": out["scores"].numpy()})
    return coco_map(gts, dts, meta.num_classes)


def get_args_parser(add_help=True):
    p = ArgumentParser(description="Held-out mAP of checkpoints under three ways of scaling the photo down.",
                       add_help=add_help)
    p.add_argument("--voc", required=True, help="the VOC folder the checkpoints were trained on")
    p.add_argument("--split", default="val", help="its held-out split (ImageSets/Main/<split>.txt)")
    p.add_argument("--checkpoints", nargs="+", required=True, help="model.pth files written by edgeexport.train")
    p.add_argument("--views", nargs="+", default=list(VIEWS), choices=VIEWS)
    p.add_argument("--json", type=output_file, help="write the table here")
    return p


def main(args):
    from benchmarks.stats import json_output, write_json
    from edgeexport.data import VOCDetection
    from edgeexport.model.checkpoint import load_model
    outputs = json_output(args.json, reads=[args.voc] + list(args.checkpoints))
    torch.set_num_threads(1)
    rows = []
    for path in args.checkpoints:
        model, meta, _ = load_model(path)
        voc = VOCDetection(args.voc, meta.labels, args.split)
        row = {"checkpoint": path}
        for view in args.views:
            m = view_map(model, meta, voc, view)
            row[view] = {"map": m["map"], "map50": m["map50"]}
        rows.append(row)
        print("{:<48} ".format(path) + "  ".join("{} {:.4f}".format(v, row[v]["map"]) for v in args.views),
              flush=True)
    write_json(outputs, args.json, {"rows": rows, "images": len(voc), "views": list(args.views)})
    return 0


if __name__ == "__main__":
    run_cli(get_args_parser, main)
