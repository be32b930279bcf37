"""The pyds app under real GStreamer (Debian's, with PyGObject), NVIDIA's elements stood in by standard ones and pyds
by a strict fake built from pyds-stubs (tests/device/deepstream/gst_standins.py): the pipeline links, runs the
H.264 demo clip to EOS, leaves a playable mp4, stops cleanly on Ctrl-C, dumps, writes COCO results; and every pyds
name the app uses exists in the bindings of DeepStream 6.0.1 (pyds 1.1.1) and 6.3 (pyds 1.1.8)."""
import ast
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from ...conftest import REPO, export_quietly, run_cli
from .gst_standins import stub_api

SYSTEM_PYTHON = "/usr/bin/python3"
STUBS = {v: os.path.join(REPO, ".venv", "stubs", "pyds-" + v, "pyds-stubs") for v in ("1.1.1", "1.1.8")}
APP = os.path.join(REPO, "edgeexport", "device", "deepstream", "pyds_app.py")


def _has_gst():
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('Gst', '1.0'); "
                        "from gi.repository import Gst; Gst.init(None); "
                        "assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('compositor')"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


needs_gst = pytest.mark.skipif(not _has_gst(), reason="needs Debian's GStreamer + PyGObject (scripts/setup.sh)")
needs_stubs = pytest.mark.skipif(not all(os.path.isdir(p) for p in STUBS.values()),
                                 reason="pyds-stubs not installed (scripts/setup.sh)")


def run_app(args, stubs="1.1.1", record=None, timeout=300, machine=None):
    cmd = [SYSTEM_PYTHON, os.path.join(REPO, "tests", "device", "deepstream", "gst_standins.py"), "--stubs",
           STUBS[stubs]]
    if record:
        cmd += ["--record", record]
    if machine:
        cmd += ["--machine", machine]
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run(cmd + ["--"] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, env=env, cwd=REPO)


def frame_count(path):
    import cv2
    cap = cv2.VideoCapture(path)
    n = 0
    while cap.read()[0]:
        n += 1
    return n


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("clip") / "clip.mp4")
    r = run_cli(["-m", "edgeexport.emulate.make_clip", path, "--seconds", "2", "--fps", "10", "--size", "160", "120"])
    assert r.returncode == 0, r.stderr
    return path


@needs_stubs
@pytest.mark.parametrize("version", sorted(STUBS))
def test_every_pyds_name_the_app_uses_is_in_the_bindings(version):
    api = stub_api(STUBS[version])
    tree = ast.parse(open(APP).read())
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == "pyds"}
    # a name used only behind hasattr(pyds, "name") may be missing from older bindings, never from the newest
    guarded = {n.args[1].value for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") ==
               "hasattr" and getattr(n.args[0], "id", "") == "pyds"}
    assert used and used - guarded <= api["module"], used - guarded - api["module"]
    assert guarded <= stub_api(STUBS[max(STUBS)])["module"], guarded
    for cls, attr in (("NvDsMetaType", "NVDSINFER_TENSOR_OUTPUT_META"), ("NvDsFrameMeta", "cast")):
        assert attr in api["classes"][cls]


@needs_gst
@needs_stubs
@pytest.mark.parametrize("version", sorted(STUBS))
def test_the_demo_clip_runs_to_eos_and_leaves_a_playable_mp4(small_bundle, clip, tmp_path, version):
    out, rec = str(tmp_path / "out.mp4"), str(tmp_path / "rec.json")
    r = run_app([small_bundle[0], "--source", clip, "--sink", "file", "--sink", "fake", "--output-file", out,
                 "--encoder", "hw", "--verbose"], version, rec)
    assert r.returncode == 0, r.stderr
    assert frame_count(out) == frame_count(clip) == 20
    assert "frames: source0 20" in r.stdout and "source0 frame 19:" in r.stdout
    elements = json.load(open(rec))["elements"]
    mux, infer = elements["mux"]["props"], elements["infer"]["props"]
    assert (mux["width"], mux["height"], mux["batch-size"]) == (160, 120, 1)  # the clip's own size
    assert infer["config-file-path"] == os.path.join(small_bundle[0], "infer_config.txt")
    assert elements["source-nvmm-0"]["props"]["caps"].startswith("video/x-raw(memory:NVMM)")
    assert elements["sink-enc-0"]["factory"] == "nvv4l2h264enc"
    assert "tiler" not in elements


@needs_gst
@needs_stubs
def test_two_sources_batch_two_tiled_with_software_encoder(small_checkpoint, clip, tmp_path):
    bundle = str(tmp_path / "b2")
    export_quietly(small_checkpoint, bundle, batch_size=2)
    out, rec = str(tmp_path / "tiled.mp4"), str(tmp_path / "rec.json")
    r = run_app([bundle, "--source", clip, "--source", clip, "--sink", "file", "--output-file", out,
                 "--encoder", "sw"], record=rec)
    assert r.returncode == 0, r.stderr
    elements = json.load(open(rec))["elements"]
    assert elements["mux"]["props"]["batch-size"] == 2 and elements["infer"]["props"]["batch-size"] == 2
    assert "model-engine-file" not in elements["infer"]["props"]  # infer_config.txt names the engine
    assert elements["tiler"]["props"]["columns"] == 2
    assert elements["sink-enc-0"]["factory"] == "x264enc" and elements["sink-enc-0"]["props"]["bitrate"] == 4000
    assert "frames: source0 20, source1 20" in r.stdout and frame_count(out) == 20


def image_folder(tmp_path, n):
    """``n`` flat-grey 128x96 JPEGs, img_0.jpg ... in order."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(n):
        Image.fromarray(np.full((96, 128, 3), 30 * i, np.uint8)).save(str(folder / "img_{}.jpg".format(i)))
    return folder


@needs_gst
@needs_stubs
def test_image_folder_coco_results_and_dump(small_bundle, tmp_path):
    folder = image_folder(tmp_path, 5)
    coco, dump = str(tmp_path / "dets.json"), str(tmp_path / "dump")
    r = run_app([small_bundle[0], "--source", str(folder), "--sink", "fake", "--coco-out", coco,
                 "--dump", dump, "2"], "1.1.8")
    assert r.returncode == 0, r.stderr
    results = json.load(open(coco))
    assert sorted({d["image_id"] for d in results}) == [0, 1, 2, 3, 4]
    assert [d["file_name"] for d in results] == ["img_{}.jpg".format(i) for i in range(5)]
    assert results[0]["bbox"] == [32.0, 24.0, 64.0, 48.0] and results[0]["category_id"] == 1
    files = sorted(os.listdir(dump))
    assert files == ["source0_frame000000_outputs.npz", "source0_frame000000_rgba.npy",
                     "source0_frame000001_outputs.npz", "source0_frame000001_rgba.npy"]
    assert np.load(os.path.join(dump, files[1])).shape == (96, 128, 4)
    outputs = np.load(os.path.join(dump, files[0]))
    from edgeexport.device.meta import BundleMeta
    meta = BundleMeta.load(small_bundle[0])
    assert {k: list(outputs[k].shape) for k in outputs.files} == {k: v[1:] for k, v in meta.output_shapes().items()}


@needs_gst
@needs_stubs
def test_tracker_rtsp_out_and_message_broker_build_and_run(small_bundle, clip, tmp_path):
    rec = str(tmp_path / "rec.json")
    r = run_app([small_bundle[0], "--source", clip, "--sink", "rtsp", "--sink", "msgbroker", "--broker",
                 "kafka://127.0.0.1:9092/dets", "--tracker", "iou", "--deepstream-version", "6.0.1",
                 "--rtsp-port", "18554"], record=rec)
    assert r.returncode == 0, r.stderr
    assert "rtsp://<this board's address>:18554/ds-test" in r.stdout
    e = json.load(open(rec))["elements"]
    assert e["tracker"]["props"]["ll-lib-file"] == \
        "/opt/nvidia/deepstream/deepstream-6.0/lib/libnvds_nvmultiobjecttracker.so"
    assert e["sink-msgconv-1"]["props"]["msg2p-newapi"] is True
    assert e["sink-1"]["props"]["conn-str"] == "127.0.0.1;9092" and e["sink-1"]["props"]["topic"] == "dets"
    assert e["sink-pay-0"]["factory"] == "rtph264pay"
    links = json.load(open(rec))["links"]
    # the broker takes the analytics from a tee after the tracker, before tiler and OSD (deepstream_app.c:635-675)
    assert links["tracker"] == ["analytics-tee"]
    assert sorted(links["analytics-tee"]) == ["osd-conv", "sink-queue-1"]
    assert links["tee"] == ["sink-queue-0"]
    # RTSP: encoder -> h264parse (SPS/PPS with every IDR: config-interval -1) -> payloader
    assert links["sink-enc-0"] == ["sink-parse-0"] and links["sink-parse-0"] == ["sink-pay-0"]


@needs_gst
@needs_stubs
def test_a_dump_on_a_jetson_unmaps_every_frame_it_mapped(small_bundle, tmp_path):
    """pyds 1.1.8 (DeepStream 6.3): "For Jetson, a matching call to unmap_nvds_buf_surface must be made"."""
    folder = image_folder(tmp_path, 3)
    for machine, mapped in (("aarch64", 0), ("x86_64", 2)):
        rec, dump = str(tmp_path / (machine + ".json")), str(tmp_path / ("dump-" + machine))
        r = run_app([small_bundle[0], "--source", str(folder), "--sink", "fake", "--dump", dump, "2"], "1.1.8",
                    record=rec, machine=machine)
        assert r.returncode == 0, r.stderr
        assert json.load(open(rec))["still_mapped"] == mapped, machine  # dGPU frames are unified memory: no map

@needs_gst
@needs_stubs
def test_ctrl_c_sends_eos_and_the_mp4_is_still_playable(small_bundle, tmp_path):
    long_clip = str(tmp_path / "long.mp4")
    r = run_cli(["-m", "edgeexport.emulate.make_clip", long_clip, "--seconds", "30", "--fps", "10", "--size", "96",
                 "96"])
    assert r.returncode == 0, r.stderr
    out = str(tmp_path / "partial.mp4")
    # the display sink (a synced fakesink here) paces the pipeline at the clip's own rate
    cmd = [SYSTEM_PYTHON, os.path.join(REPO, "tests", "device", "deepstream", "gst_standins.py"), "--stubs",
           STUBS["1.1.1"], "--",
           small_bundle[0], "--source", long_clip, "--sink", "file", "--sink", "display", "--output-file", out]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                         env=dict(os.environ, PYTHONPATH=REPO), cwd=REPO)
    time.sleep(4)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 0, stderr
    assert "stopping: sending EOS" in stdout
    n = frame_count(out)
    assert 5 < n < 300, n  # stopped early, and what was written plays


def test_without_gstreamer_or_pyds_it_says_what_to_install(small_bundle, clip):
    # this .venv's Python has neither gi nor pyds
    r = run_cli(["-m", "edgeexport.deepstream_app", small_bundle[0], "--source", clip, "--sink", "fake"])
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "python3-gi" in r.stderr or "pyds" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--source", "X", "--dump", "{tmp}/d", "zero"], "whole number"),
    (["--source", "X", "--coco-out", "{tmp}/c.json"], "--coco-out needs an image-folder"),
    (["--source", "X", "--source", "X"], "--batch-size 2"),
    (["--sink", "fake"], "at least one --source"),
])
def test_bad_input_is_one_line(small_bundle, clip, tmp_path, args, message):
    args = [clip if a == "X" else a.replace("{tmp}", str(tmp_path)) for a in args]
    r = run_cli(["-m", "edgeexport.deepstream_app", small_bundle[0]] + args)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("out", ["--coco-out", "--dump"])
def test_no_output_inside_an_image_folder_source(small_bundle, tmp_path, out):
    """The output policy sees the folder as given, not the AVI the app makes of it in its work folder."""
    folder = image_folder(tmp_path, 2)
    target = [str(folder / "c.json")] if out == "--coco-out" else [str(folder / "dump"), "1"]
    r = run_cli(["-m", "edgeexport.deepstream_app", small_bundle[0], "--source", str(folder), "--sink", "fake", out]
                + target)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert out in r.stderr and ("lies inside" in r.stderr or "overlaps" in r.stderr), r.stderr
    assert sorted(os.listdir(str(folder))) == ["img_0.jpg", "img_1.jpg"]


class _Element(object):
    """An element of a factory that has the properties named for it here (as gst-inspect would list them)."""
    HAS = {"nvv4l2h264enc": {"bitrate", "bufapi-version", "insert-sps-pps"}, "h264parse": {"config-interval"}}

    def __init__(self, factory, name, props):
        self.factory, self.name, self.props = factory, name, dict(props)

    def find_property(self, name):
        return name if name in self.HAS.get(self.factory, ()) else None

    def set_property(self, name, value):
        self.props[name] = value


class _Elements(object):
    def make(self, factory, name, **props):
        return _Element(factory, name, props)

    def available(self, factory):
        return True

    def caps(self, text):
        return text


@pytest.mark.parametrize("jetson", [True, False])
def test_rtsp_out_repeats_sps_pps_for_clients_that_join_late(jetson):
    """On a Jetson the hardware encoder inserts SPS/PPS before every IDR (deepstream_sink_bin.c:604-607 @6.0.1);
    everywhere h264parse sends them with every IDR (config-interval=-1, deepstream-app from 6.2)."""
    import argparse
    from edgeexport.device.deepstream.pyds_app import App
    from edgeexport.device.deepstream.streams import Sink
    app = App.__new__(App)
    app.el, app.jetson, app.args, app.ds = _Elements(), jetson, argparse.Namespace(encoder="hw"), None
    app._rtsp_server = lambda port, udp_port: None
    chain = app.sink_chain(0, Sink("rtsp", port=8554))
    factories = [e.factory for e in chain]
    assert factories[-4:] == ["nvv4l2h264enc", "h264parse", "rtph264pay", "udpsink"]
    encoder, parse = chain[-4], chain[-3]
    assert parse.props["config-interval"] == -1
    assert encoder.props.get("insert-sps-pps") is (True if jetson else None)
