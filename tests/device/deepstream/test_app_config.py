"""deepstream-app configs for cameras, streams, trackers and sinks: read back by GLib's GKeyFile, every key checked
against the key lists of DeepStream's own parsers (6.0.1, 6.1.1, 6.2, 6.3), every value against the source line
that gives it its meaning."""
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from edgeexport.device import keyfile
from edgeexport.device.deepstream import install as deepstream_install
from edgeexport.device.deepstream.app_config import app_config, iou_tracker_yaml, msgconv_config_text, prepare_sources
from edgeexport.device.deepstream.install import DeepStream
from edgeexport.device.deepstream.streams import Broker, Sink, Source
from edgeexport.device.errors import InputFileError, UsageError
from edgeexport.device.meta import BundleMeta, ModelMeta

from ...conftest import run_cli
from .deepstream_keys import DS_VERSIONS, KEYS, app_keys_known

pytestmark = pytest.mark.skipif(not keyfile.available(), reason="libglib-2.0 is not installed")


def _meta(batch=1, dynamic=False):
    model = ModelMeta("ssdlite320_mobilenet_v3_small", ["cat", "dog"], input_size=[320, 320])
    return BundleMeta(model, num_anchors=100, batch_size=batch, dynamic_batch=dynamic)


@pytest.fixture
def clip(tmp_path):
    import cv2
    path = str(tmp_path / "clip.mp4")
    w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10, (322, 178))
    for _ in range(3):
        w.write(np.zeros((178, 322, 3), np.uint8))
    w.release()
    return path


def _load(cfg):
    return keyfile.KeyFile(text=cfg.text)


def _sinks():
    return [Sink("display"), Sink("file", path="out.mp4"), Sink("rtsp", port=8554), Sink("fake"),
            Sink("msgbroker", broker=Broker("kafka://broker.local:9092/detections"))]


@pytest.mark.parametrize("version", ["6.0.1", "6.1.1", "6.2", "6.3"])
@pytest.mark.parametrize("tracker", ["none", "iou", "nvdcf"])
def test_every_key_is_one_deepstreams_parser_reads(tmp_path, clip, version, tracker):
    sources = [Source.parse(clip), Source.parse("rtsp://cam/stream"), Source.parse("/dev/video1:640x480@15"),
               Source.parse("csi://0"), Source.parse("http://cam/video.mjpg")]
    cfg = app_config(_meta(8, True), str(tmp_path), sources, _sinks(), str(tmp_path), tracker,
                     DeepStream(deepstream_install.parse_version(version)), encoder="hw")
    kf = _load(cfg)
    assert app_keys_known(kf) == []  # known to every version's parser, not only the one written for
    msgconv = keyfile.KeyFile(text=cfg.extra_files["msgconv_config.txt"])
    for v in DS_VERSIONS:
        for group in msgconv.groups():
            assert set(msgconv.keys(group)) <= set(KEYS[v]["nvmsgconv"][group.rstrip("0123456789")]), (v, group)


def test_source_types_and_their_settings(tmp_path, clip):
    sources = [Source.parse(clip), Source.parse("rtsp://cam/stream"), Source.parse("/dev/video1:640x480@15"),
               Source.parse("csi://2:1920x1080@60")]
    kf = _load(app_config(_meta(4, True), str(tmp_path), sources, [Sink("fake")], str(tmp_path)))
    # 2 = URI, never 3 (MultiURI: its uri goes through printf); 4 = RTSP; 1 = V4L2; 5 = CSI
    assert [kf.integer("source%d" % i, "type") for i in range(4)] == [2, 4, 1, 5]
    assert kf.string("source0", "uri") == "file://clip.mp4"  # inside the config's folder: relative, portable
    assert kf.integer("source1", "latency") > 0 and kf.integer("source1", "rtsp-reconnect-interval-sec") > 0
    assert (kf.integer("source2", "camera-v4l2-dev-node"), kf.integer("source2", "camera-width"),
            kf.integer("source2", "camera-fps-n")) == (1, 640, 15)
    assert (kf.integer("source3", "camera-csi-sensor-id"), kf.integer("source3", "camera-height")) == (2, 1080)
    assert kf.integer("streammux", "live-source") == 1


def test_n_sources_batch_n_tiled_and_the_engine_for_batch_n(tmp_path, clip):
    sources = [Source.parse(clip)] * 3
    kf = _load(app_config(_meta(4, True), str(tmp_path / "b"), sources, [Sink("file")], str(tmp_path)))
    assert kf.integer("streammux", "batch-size") == 3 and kf.integer("primary-gie", "batch-size") == 3
    # the engine stays infer_config.txt's (build_engine --batch 3 names its own there)
    assert "model-engine-file" not in kf.keys("primary-gie")
    assert kf.string("primary-gie", "config-file") == "b/infer_config.txt"
    assert kf.integer("tiled-display", "enable") == 1 and kf.integer("tiled-display", "columns") == 2
    assert kf.integer("streammux", "live-source") == 0
    with pytest.raises(UsageError, match="static batch of 1: re-export it with --batch-size 3"):
        app_config(_meta(1), str(tmp_path), sources, [Sink("file")], str(tmp_path))
    with pytest.raises(UsageError, match="dynamic .max. batch of 2"):
        app_config(_meta(2, True), str(tmp_path), sources, [Sink("file")], str(tmp_path))


def test_one_source_muxes_at_its_own_size_so_boxes_come_back_in_its_pixels(tmp_path, clip):
    kf = _load(app_config(_meta(), str(tmp_path), [Source.parse(clip)], [Sink("display")], str(tmp_path)))
    assert (kf.integer("streammux", "width"), kf.integer("streammux", "height")) == (322, 178)
    assert kf.integer("tiled-display", "enable") == 0


def test_file_and_rtsp_sinks_name_their_encoder_and_orin_nano_gets_software(tmp_path, clip, monkeypatch):
    src = [Source.parse(clip)]
    for model, want in (("NVIDIA Jetson Orin Nano Developer Kit", 1), ("NVIDIA Jetson Xavier NX", 0), ("", 0)):
        monkeypatch.setattr(deepstream_install, "board_model", lambda path=None, m=model: m)
        cfg = app_config(_meta(), str(tmp_path), src, [Sink("file", path="o.mp4"), Sink("rtsp", port=9000)],
                         str(tmp_path))
        kf = _load(cfg)
        assert kf.integer("sink0", "enc-type") == want and kf.integer("sink1", "enc-type") == want, model
        assert kf.string("sink0", "output-file") == "o.mp4" and kf.integer("sink1", "rtsp-port") == 9000
        assert any("rtsp://" in n and ":9000/ds-test" in n for n in cfg.notes)
    assert cfg.output_files == [os.path.join(str(tmp_path), "o.mp4")]


def test_message_broker_sink_per_protocol_and_version(tmp_path, clip):
    src = [Source.parse(clip)]
    ds63, ds601 = DeepStream((6, 3, 0)), DeepStream((6, 0, 1))
    for url, lib, conn in (("mqtt://10.0.0.5:1883/dets", "libnvds_mqtt_proto.so", "10.0.0.5;1883"),
                           ("kafka://k:9092/dets", "libnvds_kafka_proto.so", "k;9092"),
                           ("amqp://u:p@rabbit/dets", "libnvds_amqp_proto.so", "rabbit;5672;u;p")):
        kf = _load(app_config(_meta(), str(tmp_path), src, [Sink("msgbroker", broker=Broker(url))], str(tmp_path),
                              ds=ds63))
        assert kf.integer("sink0", "type") == 6 and kf.string("sink0", "topic") == "dets"
        assert kf.string("sink0", "msg-broker-proto-lib") == "/opt/nvidia/deepstream/deepstream/lib/" + lib
        assert kf.string("sink0", "msg-broker-conn-str") == conn
        assert kf.integer("sink0", "msg-conv-msg2p-new-api") == 1
    with pytest.raises(UsageError, match="DeepStream 6.0.1 has no MQTT protocol adaptor"):
        app_config(_meta(), str(tmp_path), src, [Sink("msgbroker", broker=Broker("mqtt://h/t"))], str(tmp_path),
                   ds=ds601)
    with pytest.raises(UsageError, match="pass --deepstream-version"):
        app_config(_meta(), str(tmp_path), src, [Sink("msgbroker", broker=Broker("mqtt://h/t"))], str(tmp_path))
    for bad in ("mqtt://host", "ftp://h:1/t", "mqtt://h:99999/t"):
        with pytest.raises(UsageError):
            Broker(bad)


def test_tracker_library_and_config_per_version(tmp_path, clip):
    src = [Source.parse(clip)]
    for version, lib_root in (((6, 0, 1), "/opt/nvidia/deepstream/deepstream-6.0"),
                              ((6, 3, 0), "/opt/nvidia/deepstream/deepstream")):
        ds = DeepStream(version)
        cfg = app_config(_meta(), str(tmp_path), src, [Sink("fake")], str(tmp_path), "iou", ds)
        kf = _load(cfg)
        assert kf.string("tracker", "ll-lib-file") == lib_root + "/lib/libnvds_nvmultiobjecttracker.so"
        assert kf.string("tracker", "ll-config-file") == "tracker_iou.yml"
        assert kf.integer("tracker", "tracker-width") % 32 == 0 and kf.integer("tracker", "tracker-height") % 32 == 0
        nvdcf = _load(app_config(_meta(), str(tmp_path), src, [Sink("fake")], str(tmp_path), "nvdcf", ds))
        assert nvdcf.string("tracker", "ll-config-file") == \
            lib_root + "/samples/configs/deepstream-app/config_tracker_NvDCF_perf.yml"


@pytest.mark.parametrize("version", ["6.0.1", "6.1.1", "6.2", "6.3"])
def test_iou_tracker_yaml_has_the_sections_and_keys_of_that_versions_own(version):
    text = iou_tracker_yaml(DeepStream(deepstream_install.parse_version(version)))
    ours, section = {}, None
    for line in text.splitlines()[1:]:
        if line.startswith("#") or not line.strip():
            continue
        key = line.split(":")[0]
        if not line.startswith(" "):
            section = key
            ours[section] = []
        else:
            ours[section].append(key.strip())
    assert {k: sorted(v) for k, v in ours.items()} == KEYS[version]["tracker_iou_yml"]


def test_an_image_folder_becomes_an_mjpeg_avi_source(tmp_path):
    import cv2
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((48, 64, 3), 40 * i, np.uint8)).save(str(folder / ("f%d.jpg" % i)))
    (folder / "notes.txt").write_text("ignored")
    sources, written = prepare_sources([str(folder)], str(tmp_path))
    assert sources[0].kind == "images" and sources[0].size == (64, 48) and len(written) == 2
    cap = cv2.VideoCapture(sources[0].path)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(int(frame.mean()))
    assert len(frames) == 4 and frames == sorted(frames)  # every image, in name order
    kf = _load(app_config(_meta(), str(tmp_path), sources, [Sink("fake")], str(tmp_path)))
    assert kf.integer("source0", "type") == 2 and kf.string("source0", "uri") == "file://imgs_0.avi"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(str(folder / "z.jpg"))
    with pytest.raises(InputFileError, match="z.jpg is 10x10, the images before it 64x48"):
        prepare_sources([str(folder)], str(tmp_path / "x"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputFileError, match="no JPEG images"):
        prepare_sources([str(empty)], str(tmp_path))


def test_msgconv_config_has_a_sensor_place_and_analytics_per_source(tmp_path, clip):
    kf = keyfile.KeyFile(text=msgconv_config_text([Source.parse(clip), Source.parse("rtsp://c/s")]))
    assert kf.groups() == ["sensor0", "place0", "analytics0", "sensor1", "place1", "analytics1"]
    assert kf.string("sensor1", "id") == "source1" and kf.double_list("sensor0", "location") == [0, 0, 0]


def test_version_is_read_from_the_installed_header(tmp_path):
    root = tmp_path / "deepstream"
    (root / "sources" / "includes").mkdir(parents=True)
    (root / "sources" / "includes" / "nvds_version.h").write_text(
        "#define NVDS_VERSION_MAJOR 6\n#define NVDS_VERSION_MINOR 0\n#define NVDS_VERSION_MICRO 1\n")
    ds = deepstream_install.deepstream_for(None, roots=(str(root),))
    assert ds.version == (6, 0, 1) and ds.detected and ds.root == str(root)
    assert deepstream_install.deepstream_for("6.3", roots=(str(root),)).root == "/opt/nvidia/deepstream/deepstream"
    with pytest.raises(UsageError, match="look like 6.0.1"):
        deepstream_install.parse_version("six")


def test_cli_writes_beside_out_and_prints_how_to_run(small_bundle, tmp_path, clip):
    bundle = str(tmp_path / "bundle")
    shutil.copytree(small_bundle[0], bundle)
    out = str(tmp_path / "cfg" / "app.txt")
    os.makedirs(os.path.dirname(out))
    r = run_cli(["-m", "edgeexport.deepstream_config", bundle, "--source", clip, "--sink", "file", "--sink", "fake",
                 "--tracker", "iou", "--deepstream-version", "6.0.1", "--out", out])
    assert r.returncode == 0, r.stderr
    assert "cd {} && deepstream-app -c app.txt".format(os.path.dirname(out)) in r.stdout
    assert sorted(os.listdir(os.path.dirname(out))) == ["app.txt", "tracker_iou.yml"]
    kf = keyfile.KeyFile(out)
    # outside the config's folder: absolute (a relative path would tie the config to this layout)
    assert app_keys_known(kf) == [] and kf.string("primary-gie", "config-file") == bundle + "/infer_config.txt"


@pytest.mark.parametrize("args, message", [
    (["--source", "/nonexistent.mp4"], "no such file or folder"),
    (["--source", "/dev/video0:640x"], "camera mode must look like"),
    (["--source", "X", "--sink", "msgbroker"], "needs --broker"),
    (["--source", "X", "--sink", "msgbroker", "--broker", "mqtt://nohost"], "--broker must look like"),
    (["--source", "X", "--source", "X"], "re-export it with --batch-size 2"),
    (["--source", "X", "--tracker", "iou"], "pass --deepstream-version"),
    (["--source", "X", "--deepstream-version", "latest", "--tracker", "iou"], "look like 6.0.1"),
    (["--sink", "file"], "at least one --source"),
    (["--source", "X", "--out", "/nonexistent/dir/app.txt"], "does not exist"),
    # writers inject: a newline would write an extra [sinkN] group, a key or a group of its own
    (["--source", "X\n[sink9]\ntype=1"], "control character"),
    (["--source", "X", "--output-file", "out.mp4\n[sink9]\ntype=1"], "newline"),
    (["--source", "rtsp:///stream"], "names no host"),
    (["--source", "rtsp://cam 1/stream"], "a blank in it"),
    (["--source", "rtsp://cam:99999/stream"], "not a valid URI"),
    (["--source", "X", "--sink", "rtsp", "--rtsp-port", "70000"], "a TCP port"),
    (["--source", "X", "--mux-size", "100000", "100000"], "from 16 to 8192"),
    (["--source", "X", "--deepstream-version", "99.0"], "not one this edgeexport knows"),
    (["--source", "X", "--deepstream-version", "5.1"], "not one this edgeexport knows"),
])
def test_bad_input_is_one_line_and_writes_nothing(small_bundle, tmp_path, clip, args, message):
    out = tmp_path / "o"
    out.mkdir()
    args = [clip if a == "X" else a for a in args]
    if "--out" not in args:
        args += ["--out", str(out / "app.txt")]
    r = run_cli(["-m", "edgeexport.deepstream_config", small_bundle[0]] + args)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr and os.listdir(str(out)) == []


def test_credentials_reach_no_message_and_sit_where_each_adaptor_reads_them(small_bundle, tmp_path):
    """nvmsgconv copies a sensor's description into every full-payload message (dsmeta_payload.cpp:156 @6.0.1):
    the camera's password never reaches msgconv's config. Kafka's conn-str is host;port[;topic] (more ';' are
    refused, nvds_kafka_proto.cpp:278-300): its SASL credentials go in the adaptor's own proto-cfg, MQTT's in its
    config's username/password; those files and a config holding a camera's password are owner-only."""
    bundle = str(tmp_path / "bundle")
    shutil.copytree(small_bundle[0], bundle)
    camera = "rtsp://admin:s3cret@cam1.local:554/stream"
    for broker, conn, broker_cfg in (
            ("kafka://dsuser:k4fka@broker.local:9093/dets", "broker.local;9093",
             # quoted, as cfg_kafka.txt writes it: the adaptor strips the quotes (strip_quote, :116-118)
             ("proto-cfg", '"security.protocol=sasl_ssl;sasl.mechanism=PLAIN;sasl.username=dsuser;'
                           'sasl.password=k4fka"')),
            ("mqtt://mq:m0squ@broker.local:1883/dets", "broker.local;1883", ("password", "m0squ"))):
        out = tmp_path / broker.split(":")[0]
        out.mkdir()
        r = run_cli(["-m", "edgeexport.deepstream_config", bundle, "--source", camera, "--sink", "msgbroker",
                     "--broker", broker, "--deepstream-version", "6.3", "--out", str(out / "app.txt")])
        assert r.returncode == 0, r.stderr
        msgconv = (out / "msgconv_config.txt").read_text()
        assert "s3cret" not in msgconv and "admin" not in msgconv
        assert keyfile.KeyFile(str(out / "msgconv_config.txt")).string("sensor0", "description") == \
            "rtsp://cam1.local:554/stream"
        kf = keyfile.KeyFile(str(out / "app.txt"))
        assert kf.string("sink0", "msg-broker-conn-str") == conn and conn.count(";") <= 2
        assert kf.string("sink0", "msg-broker-config") == "msgbroker_config.txt"
        assert "k4fka" not in (out / "app.txt").read_text() and "m0squ" not in (out / "app.txt").read_text()
        assert keyfile.KeyFile(str(out / "msgbroker_config.txt")).string("message-broker", broker_cfg[0]) == \
            broker_cfg[1]
        for name in ("msgbroker_config.txt", "app.txt"):  # the config holds the camera's password itself
            assert os.stat(str(out / name)).st_mode & 0o077 == 0, name
        assert os.stat(str(out / "msgconv_config.txt")).st_mode & 0o077 != 0  # no secret: as any file
    # a source without credentials, a broker without them: nothing is private, no broker config
    out = tmp_path / "plain"
    out.mkdir()
    assert run_cli(["-m", "edgeexport.deepstream_config", bundle, "--source", "rtsp://cam1.local/stream", "--sink",
                    "msgbroker", "--broker", "kafka://broker.local:9092/dets", "--deepstream-version", "6.3",
                    "--out", str(out / "app.txt")]).returncode == 0
    assert sorted(os.listdir(str(out))) == ["app.txt", "msgconv_config.txt"]
    assert os.stat(str(out / "app.txt")).st_mode & 0o044 == 0o044


def test_the_emulators_messages_carry_no_credentials():
    """emulate --publish builds its entries from the same msgconv config text (emulate/publish.py)."""
    from edgeexport.device.deepstream.msgconv import config_entries, frame_messages
    from edgeexport.device.deepstream.streams import redact
    kf = keyfile.KeyFile(text=msgconv_config_text([Source("rtsp", "rtsp://u:pw@cam/x", uri="rtsp://u:pw@cam/x")]))

    class Obj(object):
        left, top, width, height, object_id, label, confidence = 1.0, 2.0, 3.0, 4.0, 7, "cat", 0.9
    messages = frame_messages(0, [Obj()], "full", config_entries(kf, 0), 1)
    assert messages and all("pw" not in m and "u:" not in m for m in messages)
    assert redact("see rtsp://a:b@h/x and kafka://c@h:1/t") == "see rtsp://h/x and kafka://h:1/t"


def test_one_message_broker_sink_at_most(tmp_path, clip):
    from edgeexport.device.deepstream.app_config import get_args_parser, sinks_from_args
    args = get_args_parser().parse_args(["b", "--sink", "msgbroker", "--sink", "msgbroker", "--broker",
                                         "kafka://h:9092/t"])
    with pytest.raises(UsageError, match="one --sink msgbroker at most"):
        sinks_from_args(args)


def test_logs_and_comments_name_a_camera_without_its_password(small_bundle, tmp_path):
    out = tmp_path / "cfg"
    out.mkdir()
    r = run_cli(["-m", "edgeexport.deepstream_config", small_bundle[0], "--source", "rtsp://admin:s3cret@cam/s",
                 "--sink", "fake", "--out", str(out / "app.txt")])
    assert r.returncode == 0, r.stderr
    assert "s3cret" not in r.stdout and "source: rtsp rtsp://cam/s" in r.stdout
    text = (out / "app.txt").read_text()
    # the uri itself keeps them (deepstream-app must log in); the comment above it does not
    assert text.count("s3cret") == 1 and "uri=rtsp://admin:s3cret@cam/s" in text
    assert os.stat(str(out / "app.txt")).st_mode & 0o077 == 0


def test_file_uris_are_percent_encoded_and_read_back_as_the_file(tmp_path):
    """A blank, '%' or '#' in a file name must stay part of the name: GStreamer reads a file URI back with
    g_uri_unescape_string, where a raw '#' would start a fragment and '%20' would become a blank."""
    from urllib.parse import unquote
    names = ["my clip.mp4", "a%20b.mp4", "take#2.mp4"]
    for name in names:
        folder = tmp_path / name.replace(".mp4", "")
        folder.mkdir()
        import cv2
        path = str(folder / name)
        w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
        w.write(np.zeros((48, 64, 3), np.uint8))
        w.release()
        cfg = app_config(_meta(), str(tmp_path), [Source.parse(path)], [Sink("fake")], str(folder))
        uri = _load(cfg).string("source0", "uri")
        assert uri == "file://" + {"my clip.mp4": "my%20clip.mp4", "a%20b.mp4": "a%2520b.mp4",
                                   "take#2.mp4": "take%232.mp4"}[name]
        assert os.path.join(str(folder), unquote(uri[len("file://"):])) == path


def test_outputs_may_not_replace_the_bundles_files_or_a_source(small_bundle, tmp_path, clip):
    bundle = str(tmp_path / "bundle")
    shutil.copytree(small_bundle[0], bundle)
    before = {n: open(os.path.join(bundle, n), "rb").read() for n in ("model.onnx", "infer_config.txt")}
    for args in (["--out", os.path.join(bundle, "infer_config.txt")], ["--output-file", "model.onnx"],
                 ["--out", clip], ["--output-file", clip]):
        r = run_cli(["-m", "edgeexport.deepstream_config", bundle, "--source", clip, "--sink", "file"] + args)
        assert r.returncode == 2 and "would destroy the input" in r.stderr, (args, r.stderr)
    assert {n: open(os.path.join(bundle, n), "rb").read() for n in before} == before
    assert os.path.getsize(clip) > 0
