"""The last export stage: ``write_bundle(output_dir, meta, graph, parity)`` -> the bundle folder (a ``Bundle``).

The folder is built in a hidden sibling (``.<name>.<8 chars>.partial``) and renamed into place at the end, so a
failed or interrupted export leaves nothing half-written where the bundle goes; a SIGKILL's leftover is swept by
the next export to the same place. ``force`` replaces only a folder that holds a bundle (its model.json says so),
never the working directory or a folder above it. Host-side.
"""
import json
import os
import shutil

import numpy as np

from .. import device as _device_package
from ..data.frames import video_frame_size
from ..device.bundle import (FIXTURE_EXPECTED, FIXTURE_EXPECTED_INT8, FIXTURE_INPUTS, GRAPH_BEFORE_NMS,
                             GRAPH_INT8_BEFORE_NMS, TOP_LEVEL_FILES, Bundle)
from ..device.deepstream.app_config import app_config
from ..device.deepstream.infer_config import (EXPLICIT_INT8_CALIB_FILE, EXPLICIT_INT8_CALIB_TEXT, PARSER_SOURCES,
                                              infer_config_text)
from ..device.deepstream.streams import Sink, Source
from ..device.errors import ExportError, InputFileError, OutputExistsError
from ..device.fileio import (atomic_write_bytes, atomic_write_text, is_inside, make_temporary_folder,
                             remove_stale_temporaries)
from ..device.meta import MODEL_JSON, is_bundle_folder
from ..device.naming import engine_file_name
from .quantize import QDQ_ONNX, QDQ_RECORD

DEVICE_PACKAGE = os.path.dirname(os.path.abspath(_device_package.__file__))
TOP_PACKAGE = os.path.dirname(DEVICE_PACKAGE)
# jetson/, the board's own files: inside an installed package (setup.cfg maps it to edgeexport/jetson), beside the
# package in a checkout (and an editable install of one)
BOARD_FOLDERS = (os.path.join(TOP_PACKAGE, "jetson"), os.path.join(os.path.dirname(TOP_PACKAGE), "jetson"))
DEFAULT_FRAME = (1280, 720)
FP16_ONNX = "model_fp16.onnx"  # what TensorRT 11 builds an FP16 engine from
TOP_LEVEL_NAMES = TOP_LEVEL_FILES + ("model.onnx", FP16_ONNX, QDQ_ONNX, QDQ_RECORD, EXPLICIT_INT8_CALIB_FILE)


# What the device side writes into a bundle (build_engine, deepstream_config, the parser's build, Python's caches):
# the project's files too, replaced with the bundle. Anything else in a bundle folder is the user's.
DEVICE_OUTPUTS = ("*.engine", "*.engine.json", "calibration.cache", "deepstream_app.txt", "msgconv_config.txt",
                  "msgbroker_config.txt", "tracker_*.yml", "*.avi", "*.avi.frames.json", "jetson/parser/*.so",
                  "jetson/parser/*.o", "*/__pycache__/*", "*.pyc")
# A bundle written before model.json listed its files: what export wrote then, by name.
LEGACY_BUNDLE = TOP_LEVEL_NAMES + ("input.*", "parity/*", "validation/*", "edgeexport/*", "jetson/*")


def user_files(folder):
    """The files in a bundle ``folder`` that neither export (model.json's manifest) nor the device side wrote."""
    import fnmatch
    try:
        manifest = set(json.load(open(os.path.join(folder, MODEL_JSON))).get("manifest") or [])
    except Exception:  # by design: an unreadable model.json lists nothing; the legacy names then decide
        manifest = set()
    ours = DEVICE_OUTPUTS + (() if manifest else LEGACY_BUNDLE)
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            rel = os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
            if rel not in manifest and not any(fnmatch.fnmatch(rel, p) for p in ours):
                found.append(rel)
    return sorted(found)


def check_output_dir(path, force, inputs=(), video=None):
    """Refuse, before any slow work, an output folder that would lose data: the working directory or above it,
    a file, a folder that is not a bundle, a bundle without ``force``, a bundle holding one of ``inputs`` (the
    checkpoint being exported, the clip), or a user's file where the new bundle writes one of the same name.
    A user's other files in a bundle replaced with ``force`` are moved into the new one. Returns the absolute
    path."""
    path = os.path.abspath(path)
    if is_inside(os.getcwd(), path):
        raise OutputExistsError("{} is the working directory or a folder above it: export never replaces that; "
                                "name a new folder for the bundle".format(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputExistsError("{} exists and is a file, not a bundle folder; choose another --output-dir".format(
            path))
    if os.path.isdir(path) and os.listdir(path):
        if not is_bundle_folder(path):
            raise OutputExistsError("{} is not empty and holds no edgeexport bundle (no {} written by export): "
                                    "--force replaces only bundles; choose a new folder".format(path, MODEL_JSON))
        if not force:
            raise OutputExistsError("{} already holds a bundle: pass --force to replace it".format(path))
        for src in inputs:
            if src and is_inside(src, path):
                raise OutputExistsError("{} is inside the bundle {} that --force would replace: move it out "
                                        "first, or choose another --output-dir".format(src, path))
        writes = set(TOP_LEVEL_NAMES) | ({"input" + (os.path.splitext(video)[1] or ".mp4")} if video else set())
        clash = [f for f in user_files(path) if f in writes]
        if clash:
            raise OutputExistsError("{} holds {} of yours, where the new bundle writes a file of that name: move "
                                    "it out first, or choose another --output-dir".format(path, ", ".join(clash)))
    parent = os.path.dirname(path)
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise InputFileError("cannot write the bundle under {}: it is a file".format(parent))
    return path


def board_folder():
    """The jetson/ folder this edgeexport carries (its set-up script, requirements and the parser's sources)."""
    for folder in BOARD_FOLDERS:
        if os.path.isfile(os.path.join(folder, "setup.sh")):
            return folder
    raise ExportError("this edgeexport install has no jetson/ folder (looked in {}): the bundle would lack the "
                      "parser and the board's set-up; reinstall edgeexport (pip install edgeexport[export]) or "
                      "run from a full checkout".format(" and ".join(BOARD_FOLDERS)))


def copy_device_side(dst):
    """The device package as is, with the package's top-level modules (its ``__init__`` and the ``python -m``
    front doors of the device commands, which import only the device package), and jetson/ (the board's set-up
    and the C++ parser's sources, never a build of them)."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "build-*", "*.so", "*.tmp")
    shutil.copytree(DEVICE_PACKAGE, os.path.join(dst, "edgeexport", "device"), ignore=skip)
    for name in sorted(os.listdir(TOP_PACKAGE)):
        if name.endswith(".py"):
            shutil.copy2(os.path.join(TOP_PACKAGE, name), os.path.join(dst, "edgeexport", name))
    shutil.copytree(board_folder(), os.path.join(dst, "jetson"), ignore=skip)


def write_bundle(output_dir, meta, graph, parity, video=None, force=False, source="model.pth", validate=None):
    """Write the bundle of ``meta`` (BundleMeta, its sha256 set from ``graph``), ``graph`` (OnnxGraph) and
    ``parity`` (ExportParity) into ``output_dir``; ``video`` (path, optional) goes into app_config.txt and the
    bundle; ``validate(folder)`` runs on the complete bundle before it is moved into place (and may add to
    ``meta``). Returns the Bundle."""
    path = check_output_dir(output_dir, force)
    frame_w, frame_h = DEFAULT_FRAME
    video_name = "input.mp4"
    if video:
        frame_w, frame_h = video_frame_size(video)
        video_name = "input" + (os.path.splitext(video)[1] or ".mp4")
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
        remove_stale_temporaries(parent, [os.path.basename(path)])
        tmp = make_temporary_folder(path)
    except OSError as e:
        raise InputFileError("cannot write the bundle under {}: {}".format(parent, e.strerror or e))
    try:
        meta.onnx_sha256 = graph.sha256
        atomic_write_bytes(os.path.join(tmp, meta.onnx_file), graph.data)
        if graph.fp16_data:
            meta.onnx_fp16_file, meta.onnx_fp16_sha256 = FP16_ONNX, graph.fp16_sha256
            atomic_write_bytes(os.path.join(tmp, FP16_ONNX), graph.fp16_data)
        os.makedirs(os.path.join(tmp, "parity"))
        if graph.int8_data:
            meta.onnx_int8_file, meta.onnx_int8_sha256 = QDQ_ONNX, graph.int8_sha256
            meta.int8 = {k: v for k, v in graph.int8_record.items() if k not in ("ranges", "identity")}
            meta.int8["record"] = QDQ_RECORD
            atomic_write_bytes(os.path.join(tmp, QDQ_ONNX), graph.int8_data)
            atomic_write_text(os.path.join(tmp, EXPLICIT_INT8_CALIB_FILE), EXPLICIT_INT8_CALIB_TEXT)
            atomic_write_text(os.path.join(tmp, QDQ_RECORD), json.dumps(graph.int8_record, indent=1,
                                                                        sort_keys=True) + "\n")
            if graph.host_int8_data is not graph.int8_data:
                atomic_write_bytes(os.path.join(tmp, GRAPH_INT8_BEFORE_NMS), graph.host_int8_data)
        np.save(os.path.join(tmp, FIXTURE_INPUTS), parity.inputs)
        np.savez(os.path.join(tmp, FIXTURE_EXPECTED), detection_threshold=np.float32(parity.threshold),
                 **parity.expected)
        if parity.expected_int8 is not None:
            np.savez(os.path.join(tmp, FIXTURE_EXPECTED_INT8), detection_threshold=np.float32(parity.threshold),
                     **parity.expected_int8)
        if graph.has_plugin:
            atomic_write_bytes(os.path.join(tmp, GRAPH_BEFORE_NMS), graph.host_data)
        atomic_write_text(os.path.join(tmp, "parity", "report.json"), json.dumps(parity.to_dict(), indent=1) + "\n")
        atomic_write_text(os.path.join(tmp, "parity", "report.txt"), "\n".join(parity.lines(meta.layout)) + "\n")
        atomic_write_text(os.path.join(tmp, "labels.txt"), "\n".join(meta.model.labels) + "\n")
        if video:
            shutil.copy2(video, os.path.join(tmp, video_name))
        atomic_write_text(os.path.join(tmp, "infer_config.txt"), infer_config_text(meta))
        # the bundle's clip (relative to the config, so the bundle stays portable), at its own size; hardware
        # encoder (deepstream_config --encoder sw writes one for an Orin Nano, which has none)
        clip = Source("file", video_name, path=os.path.join(tmp, video_name), size=(frame_w, frame_h))
        for name, sink in (("app_config.txt", Sink("file", path="out.mp4")), ("app_config_fps.txt", Sink("fake"))):
            cfg = app_config(meta, tmp, [clip], [sink], tmp, encoder="hw")
            atomic_write_text(os.path.join(tmp, name), cfg.text)
        copy_device_side(tmp)
        atomic_write_text(os.path.join(tmp, "README.md"), bundle_readme(meta, source, path, video_name))
        meta.save(os.path.join(tmp, MODEL_JSON))
        if validate is not None:
            validate(tmp)
        meta.files = recorded_files(tmp, meta)
        meta.manifest = written_files(tmp)
        meta.save(os.path.join(tmp, MODEL_JSON))
        _replace_folder(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return Bundle(path)


def recorded_files(folder, meta):
    """{path: sha256} of what no command rewrites: the graphs, labels.txt, the parity fixtures and the validation
    set (deepstream.bundle_check verifies them; infer_config.txt, which build_engine rewrites, is checked by value)."""
    from ..device.bundle import file_sha256
    names = meta.graph_files + ["labels.txt"] + ([QDQ_RECORD, EXPLICIT_INT8_CALIB_FILE] if meta.onnx_int8_file else [])
    for sub in ("parity", "validation"):
        for root, _, files in os.walk(os.path.join(folder, sub)):
            names += [os.path.relpath(os.path.join(root, f), folder).replace(os.sep, "/") for f in files]
    return {n: file_sha256(os.path.join(folder, n)) for n in sorted(set(names))
            if n and os.path.isfile(os.path.join(folder, n))}


def written_files(folder):
    """Every file of the folder export built, relative and sorted: model.json's manifest (model.json included)."""
    names = [MODEL_JSON]
    for root, _, files in os.walk(folder):
        names += [os.path.relpath(os.path.join(root, f), folder).replace(os.sep, "/") for f in files]
    return sorted(set(names))


def _replace_folder(tmp, path):
    """Rename ``tmp`` to ``path``; an old bundle there is moved aside first, the user's own files in it (not in
    its manifest, not the device side's) moved into the new one, and the rest deleted only afterwards."""
    old, keep = None, []
    if os.path.exists(path):
        keep = user_files(path)
        for rel in keep:  # checked before: none lands on a file of the new bundle
            if os.path.exists(os.path.join(tmp, rel)):
                raise OutputExistsError("{} holds {} of yours, where the new bundle writes a file: move it out "
                                        "first".format(path, rel))
        old = make_temporary_folder(path)
        os.rmdir(old)
        os.rename(path, old)
    for rel in keep:
        os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
        os.rename(os.path.join(old, rel), os.path.join(tmp, rel))
    os.rename(tmp, path)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def bundle_readme(meta, source, bundle_path, video_name):
    m = meta.model
    engine = engine_file_name(meta.onnx_file, meta.batch_size, meta.precision)
    return """# edgeexport bundle: {arch}, {k} classes

Written by edgeexport {version} (`export.py`) from `{src}`. Everything here is derived from `model.json`;
re-export instead of editing.

| | |
|---|---|
| input | `input` float32 {ishape}, {color} pixels minus offsets {offsets} |
| outputs | {outputs} |
| normalisation | fold `{fold}`: offsets = 255*mean, net-scale-factor = 1, 1/(255*std) inside the first conv |
| ONNX | opset {opset}, sha256 `{sha}` |
| engine nvinfer looks for | `{engine}` |

## On the Jetson (JetPack 4.6.x: Python 3.6, TensorRT 8.2, DeepStream 6.0.1; or newer)

```bash
# 1. on the host: copy this folder
scp -r {bundle} jetson:~/{bundle_name}
# 2. on the Jetson
cd ~/{bundle_name}
bash jetson/setup.sh      # checks L4T, CUDA, TensorRT, DeepStream; installs pycuda; builds the parser; one line
                          # says what is missing. By hand: export PATH=/usr/local/cuda/bin:$PATH (pycuda builds
                          # with nvcc) && pip3 install --user -r jetson/requirements.txt && make -C {parser_src}
python3 -m edgeexport.build_engine . --{precision}           # writes {engine}
python3 -m edgeexport.parity . --backend tensorrt    # TensorRT vs PyTorch's own numbers (parity/)
cp /path/to/your/clip.mp4 {video}                     # or edit uri= in app_config.txt
deepstream-app -c app_config.txt                     # annotated video -> ./out.mp4 (relative to where it runs)
deepstream-app -c app_config_fps.txt                 # FPS (fakesink, sync=0); look for **PERF lines
# cameras, streams, a tracker, RTSP out, metadata to a broker: write a config for them
python3 -m edgeexport.deepstream_config . --source rtsp://CAMERA/stream --sink display --sink rtsp \\
    --tracker iou             # then: deepstream-app -c deepstream_app.txt (N sources: export --batch-size N)
```

`edgeexport/` is the device side of edgeexport, as is: Python 3.6, numpy and TensorRT; no torch, no onnx.
`jetson/` is what belongs to the board alone: its set-up script, the Python requirements it installs, and the
nvinfer parser's C++ with its Makefile (GNU make and GCC 7.5 are enough; the library lands in `{parser_src}`,
where infer_config.txt's custom-lib-path names it).

## Engines go stale, and nvinfer does not notice

nvinfer loads `model-engine-file` whenever it deserialises: it does not check that the engine was built from
this `model.onnx`. After copying a re-exported bundle over this one, run `build_engine` again: it keeps a record
of what each engine was built from (`<engine>.json`: ONNX sha256, TensorRT version, GPU, precision, batch,
workspace) and rebuilds when anything differs, saying why. `parity` and the TensorRT runner refuse an engine
whose record does not match. On TensorRT 11 (strongly typed) an FP16 engine is built from `{fp16}`.
""".format(fp16=FP16_ONNX, arch=m.arch, k=m.num_classes, version=meta.written_by,
           src=os.path.basename(source), ishape=meta.input_shape, color=meta.color_format.upper(), offsets=[round(o, 3) for o in meta.offsets],
           outputs=", ".join("`{}` {}".format(k, v) for k, v in sorted(meta.output_shapes().items())),
           fold=meta.fold, opset=meta.opset, sha=meta.onnx_sha256, engine=engine, bundle=bundle_path,
           bundle_name=os.path.basename(bundle_path), precision=meta.precision, video=video_name,
           parser_src=PARSER_SOURCES)
