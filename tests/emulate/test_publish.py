"""emulate --publish against a real MQTT broker (Debian's mosquitto on loopback): every message a subscriber
receives is checked against the emulator's own detections, in nvmsgconv's schema
(edgeexport.device.deepstream.msgconv)."""
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from edgeexport.device.deepstream.msgconv import UNTRACKED_OBJECT_ID

from ..conftest import run_cli

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("mosquitto") is None and not os.path.exists("/usr/sbin/mosquitto"),
                                 reason="mosquitto is not installed (scripts/setup.sh installs it)")]


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = _free_port()
    conf = tmp_path_factory.mktemp("mqtt") / "mosquitto.conf"
    conf.write_text("listener {} 127.0.0.1\nallow_anonymous true\npersistence false\n".format(port))
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("mosquitto did not start")
    yield port
    proc.terminate()
    proc.wait(timeout=10)


class Subscriber(object):
    def __init__(self, port, topic):
        import paho.mqtt.client as mqtt
        self.messages, self.ready = [], threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = lambda c, u, m: self.messages.append(json.loads(m.payload.decode()))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def stop(self, expected, timeout=10):
        deadline = time.time() + timeout
        while len(self.messages) < expected and time.time() < deadline:
            time.sleep(0.05)
        self.client.loop_stop()
        self.client.disconnect()
        return self.messages


def _emulate(trained_bundle, tmp_path, port, topic, payload, interval):
    out = str(tmp_path / "det.json")
    r = run_cli(["-m", "edgeexport.emulate", str(trained_bundle / "bundle"), "--input",
                 str(trained_bundle / "clip.mp4"), "--json", out, "--no-progress", "--publish",
                 "mqtt://127.0.0.1:{}/{}".format(port, topic), "--payload", payload, "--msg-interval", str(interval)])
    assert r.returncode == 0, r.stderr
    return json.load(open(out))["frames"], r.stdout


def test_full_payload_one_message_per_object_on_every_nth_frame(trained_bundle, tmp_path, broker):
    sub = Subscriber(broker, "dets/full")
    frames, stdout = _emulate(trained_bundle, tmp_path, broker, "dets/full", "full", 3)
    expected = [(f["frame"], o) for f in frames if f["frame"] % 3 == 0 for o in f["objects"]]
    assert expected and "published {} messages".format(len(expected)) in stdout
    got = sub.stop(len(expected))
    assert len(got) == len(expected)
    for (frame, obj), msg in zip(expected, got):  # QoS 1 over one connection keeps the order
        assert msg["mdsversion"] == "1.0" and msg["sensor"]["id"] == "source0"
        assert msg["@timestamp"].endswith("Z") and len(msg["@timestamp"]) == 24
        o = msg["object"]
        assert o["id"] == str(UNTRACKED_OBJECT_ID)
        assert o[obj["label"]]["confidence"] == pytest.approx(obj["score"], abs=1e-4)
        # integers, truncated (the JSON file's boxes are rounded to 0.01: compare within a pixel)
        got_box = [o["bbox"][k] for k in ("topleftx", "toplefty", "bottomrightx", "bottomrighty")]
        assert all(isinstance(v, int) for v in got_box)
        assert got_box == pytest.approx(obj["box"], abs=1.0)


def test_minimal_payload_one_message_per_frame(trained_bundle, tmp_path, broker):
    sub = Subscriber(broker, "dets/min")
    frames, _ = _emulate(trained_bundle, tmp_path, broker, "dets/min", "minimal", 5)
    expected = [f for f in frames if f["frame"] % 5 == 0]
    got = sub.stop(len(expected))
    assert [m["id"] for m in got] == [f["frame"] for f in expected]
    for f, m in zip(expected, got):
        assert m["version"] == "4.0" and m["sensorId"] == "source0" and len(m["objects"]) == len(f["objects"])
        for o, s in zip(f["objects"], m["objects"]):
            parts = s.split("|")
            assert parts[0] == str(UNTRACKED_OBJECT_ID) and parts[5] == o["label"]
            assert [float(v) for v in parts[1:5]] == pytest.approx(o["box"], abs=0.05)


def test_an_unreachable_broker_is_one_line(trained_bundle, tmp_path):
    port = _free_port()  # nothing listens there
    r = run_cli(["-m", "edgeexport.emulate", str(trained_bundle / "bundle"), "--input",
                 str(trained_bundle / "clip.mp4"), "--publish", "mqtt://127.0.0.1:{}/t".format(port)])
    assert r.returncode != 0 and "cannot reach the MQTT broker" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli(["-m", "edgeexport.emulate", str(trained_bundle / "bundle"), "--input",
                 str(trained_bundle / "clip.mp4"), "--publish", "kafka://127.0.0.1:9092/t"])
    assert r.returncode == 2 and "available: mqtt" in r.stderr
