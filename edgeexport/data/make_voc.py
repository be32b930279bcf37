"""Write a VOC-format dataset of the synthetic shapes on natural photographs (scikit-image's), for measurements
on data that looks like what people bring: a VOC folder any tool reads, with train and val splits.

    python -m edgeexport.data.make_voc voc_shapes --train 2000 --val 500 --size 480 360

Writes JPEGImages/*.jpg, Annotations/*.xml and ImageSets/Main/{train,val}.txt. Host-side (OpenCV)."""
import os
import xml.etree.ElementTree as ET

import numpy as np

from ..device.cli import ArgumentParser, image_count, image_side, int_range, run_cli, seed
from ..device.errors import InputFileError
from ..device.fileio import atomic_write_text, check_can_create_folder
from .synthetic import SHAPE_CLASSES, render_scene


def write_voc(root, train=2000, val=500, size=(480, 360), classes=3, seed=0, natural=True):
    import cv2
    labels = list(SHAPE_CLASSES[:classes])
    for d in ("JPEGImages", "Annotations", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    splits = {"train": [], "val": []}
    for split, count, offset in (("train", train, 0), ("val", val, 10 ** 6)):
        for i in range(count):
            rng = np.random.default_rng([seed, offset + i])
            w, h = size
            img, boxes, cls = render_scene(rng, h, w, labels, natural=natural)
            name = "{}_{:06d}".format(split, i)
            if not cv2.imwrite(os.path.join(root, "JPEGImages", name + ".jpg"), img[..., ::-1],
                               [cv2.IMWRITE_JPEG_QUALITY, 92]):
                raise InputFileError("cannot write {}".format(os.path.join(root, "JPEGImages", name + ".jpg")))
            ann = ET.Element("annotation")
            ET.SubElement(ann, "filename").text = name + ".jpg"
            s = ET.SubElement(ann, "size")
            for k, v in (("width", w), ("height", h), ("depth", 3)):
                ET.SubElement(s, k).text = str(v)
            for b, c in zip(boxes, cls):
                o = ET.SubElement(ann, "object")
                ET.SubElement(o, "name").text = labels[int(c) - 1]
                ET.SubElement(o, "difficult").text = "0"
                bb = ET.SubElement(o, "bndbox")
                for k, v in zip(("xmin", "ymin", "xmax", "ymax"), b):
                    ET.SubElement(bb, k).text = "{:.1f}".format(float(v))
            atomic_write_text(os.path.join(root, "Annotations", name + ".xml"), ET.tostring(ann).decode() + "\n")
            splits[split].append(name)
    for split, names in splits.items():
        atomic_write_text(os.path.join(root, "ImageSets", "Main", split + ".txt"), "\n".join(names) + "\n")
    return labels


def get_args_parser(add_help=True):
    p = ArgumentParser(description="Write a VOC-format shapes dataset on natural photographs.", add_help=add_help)
    p.add_argument("output", help="the VOC root to create")
    p.add_argument("--train", type=image_count, default=2000)
    p.add_argument("--val", type=image_count, default=500)
    p.add_argument("--size", type=image_side, nargs=2, default=[480, 360], metavar=("W", "H"))
    p.add_argument("--classes", type=int_range(1, 8), default=3, help="how many shape classes")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--textured", action="store_true", help="the synthetic textured backgrounds instead of photos")
    return p


def main(args):
    if args.classes > len(SHAPE_CLASSES):
        raise InputFileError("--classes must be at most {}".format(len(SHAPE_CLASSES)))
    check_can_create_folder(args.output)
    if os.path.isdir(args.output) and os.listdir(args.output):
        from ..device.errors import OutputExistsError
        raise OutputExistsError("{} is not empty: make_voc writes a new dataset into a new or empty folder, and "
                                "would overwrite the files of the one there".format(args.output))
    labels = write_voc(args.output, args.train, args.val, tuple(args.size), args.classes, args.seed,
                       natural=not args.textured)
    print("VOC dataset: {} ({} train, {} val, classes {})".format(args.output, args.train, args.val,
                                                                  ", ".join(labels)))
    return 0


def cli(argv=None):
    run_cli(get_args_parser, main, argv)


if __name__ == "__main__":
    cli()
