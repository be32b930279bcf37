"""The bad-input corpus the command-line tests share (tests/test_bad_inputs.py: a case each; tests/test_fuzz_cli.py:
generated argument vectors over it): bad checkpoints, damaged bundles, datasets, clips, a folder of the user's
notes; and ``invoke``, which runs one command in this process as ``python -m`` would.
"""
import contextlib
import importlib
import io
import json
import logging
import os
import shutil
import traceback
import zipfile

import numpy as np

MARKER = "HOSTILE_PICKLE_RAN"
CLI_MODULES = {
    "export": "edgeexport.export.cli", "train": "edgeexport.train.cli", "parity": "edgeexport.device.check.parity",
    "build_engine": "edgeexport.device.tensorrt.build_engine", "emulate": "edgeexport.emulate.cli",
    "deepstream_config": "edgeexport.device.deepstream.app_config",
    "deepstream_app": "edgeexport.device.deepstream.pyds_app", "evaluate": "edgeexport.device.check.evaluate",
    "make_clip": "edgeexport.emulate.make_clip", "trt_fps": "benchmarks.trt_fps",
    "parser_fps": "benchmarks.parser_fps", "deepstream_perf": "benchmarks.deepstream_perf",
    "host_fps": "benchmarks.host_fps", "fp16_numerics": "benchmarks.fp16_numerics",
    "make_voc": "edgeexport.data.make_voc", "even_crop": "benchmarks.even_crop", "train_speed": "benchmarks.train_speed",
}


class Evil(object):
    """Unpickling this runs a shell command: what a hostile model.pth would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch {}".format(self.marker),))


def _flip_tensor_bytes(src, dst):
    data = bytearray(open(src, "rb").read())
    with zipfile.ZipFile(src) as z:
        entry = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    start = entry.header_offset + 30 + len(entry.filename.encode()) + len(entry.extra) + 100
    for k in range(10):
        data[start + 7 * k] ^= 0x5A
    open(dst, "wb").write(bytes(data))


def make_corpus(small_checkpoint, small_bundle, root):
    """Bad files of every kind, generated under ``root`` (a pathlib.Path); returns a dict name -> path (and the
    marker's path)."""
    import torch

    from edgeexport.device.meta import BundleMeta
    c = {"root": str(root), "good": small_checkpoint, "bundle": small_bundle[0], "marker": str(root / MARKER)}

    def path(name):
        c[name] = str(root / name)
        return c[name]

    data = open(small_checkpoint, "rb").read()
    open(path("empty.pth"), "wb").close()
    os.mkdir(path("folder.pth"))
    open(path("text.pth"), "w").write("this is not a checkpoint\n")
    open(path("trunc5000.pth"), "wb").write(data[:5000])
    open(path("trunchalf.pth"), "wb").write(data[:len(data) // 2])
    open(path("trunclast.pth"), "wb").write(data[:-1])
    _flip_tensor_bytes(small_checkpoint, path("flipped.pth"))
    with zipfile.ZipFile(path("wrongzip.pth"), "w") as z:
        z.writestr("readme.txt", "a zip, but not of a checkpoint")
    torch.save({"model": {"w": torch.zeros(1)}, "payload": Evil(c["marker"])}, path("hostile.pth"))
    import torchvision
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), path("classifier.pth"))
    torch.save([1, 2, 3], path("list.pth"))
    open(path("labels_empty.txt"), "w").write("\n\n")
    open(path("corrupt.mp4"), "wb").write(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    open(path("afile"), "w").write("a regular file that shadows a folder\n")
    os.mkdir(path("notes"))
    open(os.path.join(c["notes"], "todo.txt"), "w").write("my notes\n")
    open(os.path.join(c["notes"], "todo.json"), "w").write('{"mine": true}\n')
    os.mkdir(path("cwd"))
    from edgeexport.emulate.make_clip import render_clip
    render_clip(path("clip.mp4"), seconds=1, fps=5, width=96, height=96)
    shutil.copy(c["clip.mp4"], path("clip_copy.mp4"))

    # bundles with one thing wrong each
    def bundle(name, damage):
        dst = path(name)
        shutil.copytree(small_bundle[0], dst)
        damage(dst)
    bundle("b_onnx_trunc", lambda d: open(os.path.join(d, "model.onnx"), "r+b").truncate(4096))
    bundle("b_onnx_missing", lambda d: os.unlink(os.path.join(d, "model.onnx")))
    bundle("b_json_invalid", lambda d: open(os.path.join(d, "model.json"), "w").write("{ not json"))

    def future(d):
        m = json.load(open(os.path.join(d, "model.json")))
        m["format_version"], m["written_by"] = 99, "9.9.0"
        json.dump(m, open(os.path.join(d, "model.json"), "w"))
    bundle("b_json_future", future)

    def edit_json(**deploy):
        def edit(d):
            m = json.load(open(os.path.join(d, "model.json")))
            m["deploy"].update(deploy)
            open(os.path.join(d, "model.json"), "w").write(json.dumps(m))  # NaN written as NaN, as json does
        return edit
    bundle("b_json_nan_offsets", edit_json(offsets=[float("nan"), 0.0, 0.0]))
    bundle("b_json_opset_string", edit_json(opset="13"))
    bundle("b_json_layout", edit_json(layout="bogus"))
    bundle("b_json_onnx_escape", edit_json(onnx_file="../model.onnx"))
    bundle("b_json_onnx_absolute", edit_json(onnx_file="/etc/passwd"))
    bundle("b_no_fixtures", lambda d: shutil.rmtree(os.path.join(d, "parity")))
    bundle("b_no_labels", lambda d: os.unlink(os.path.join(d, "labels.txt")))
    bundle("b_cfg_corrupt", lambda d: open(os.path.join(d, "infer_config.txt"), "w").write("[property\nx"))

    def wrong_shape(d):  # a consistent bundle whose ONNX takes another input size than model.json says
        import hashlib

        from edgeexport.export.onnx_graph import export_onnx_bytes
        tiny = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
        tiny.output_names = ["boxes"]
        proto = export_onnx_bytes(tiny, [1, 3, 300, 300], ["boxes"])
        raw = proto.SerializeToString()
        open(os.path.join(d, "model.onnx"), "wb").write(raw)
        meta = BundleMeta.load(d)
        meta.onnx_sha256 = hashlib.sha256(raw).hexdigest()
        meta.save(os.path.join(d, "model.json"))
    bundle("b_wrong_shape", wrong_shape)
    bundle("b_engine_empty", lambda d: open(os.path.join(d, "model.onnx_b1_gpu0_fp16.engine"), "wb").close())

    # datasets: VOC with a corrupt image, VOC with a zero-byte image and no <size>, COCO without sizes
    from PIL import Image
    for name, img_bytes, with_size in (("voc_corrupt", b"\xff\xd8\xff\xe0garbage", True), ("voc_zero", b"", False)):
        voc = root / name
        (voc / "Annotations").mkdir(parents=True)
        (voc / "JPEGImages").mkdir()
        Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(str(voc / "JPEGImages" / "good.jpg"))
        (voc / "JPEGImages" / "bad.jpg").write_bytes(img_bytes)
        for stem in ("good", "bad"):
            size = "<size><width>64</width><height>64</height></size>" if with_size or stem == "good" else ""
            (voc / "Annotations" / (stem + ".xml")).write_text(
                "<annotation><filename>{}.jpg</filename>{}<object><name>circle</name><bndbox><xmin>4</xmin>"
                "<ymin>4</ymin><xmax>40</xmax><ymax>40</ymax></bndbox></object></annotation>".format(stem, size))
        c[name] = str(voc)
    coco = root / "coco"
    coco.mkdir()
    (coco / "zero.jpg").write_bytes(b"")
    json.dump({"images": [{"id": 1, "file_name": "zero.jpg"}], "categories": [{"id": 1, "name": "circle"}],
               "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]}]},
              open(str(coco / "nowidth.json"), "w"))
    c["coco"] = str(coco)
    return c


def engine_double(monkeypatch):
    """build_engine and the TensorRT runner see the TensorRT double (TensorRT 8.2's API, a Xavier-class GPU with
    INT8) and its memory."""
    from edgeexport.device.tensorrt import api
    from tests.device.tensorrt.trt_double import FakeCuda, make_tensorrt
    cuda = FakeCuda("orin")
    trt = make_tensorrt("8.2", "orin", cuda=cuda)
    monkeypatch.setattr("edgeexport.device.tensorrt.runner.import_tensorrt", lambda: trt)
    monkeypatch.setattr("edgeexport.device.tensorrt.cuda_memory.cuda_backend", lambda gpu_id=0: cuda)
    monkeypatch.setattr(api, "_PROCESS", {"logger": None, "plugins": None})


def invoke(cli, argv):
    """One command in this process, as ``python -m`` would run it. Returns (exit code, stdout, stderr, traceback
    of an exception that escaped the command's error handling, or None)."""
    from edgeexport.device.cli import run_cli
    module = importlib.import_module(CLI_MODULES[cli])
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []  # so that run_cli's logging writes into this call's stderr
    code, escaped = 0, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                run_cli(module.get_args_parser, module.main, argv)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        escaped, code = traceback.format_exc(), 1
    finally:
        root.handlers = saved
    return code, out.getvalue(), err.getvalue(), escaped
