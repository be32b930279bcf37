"""``emulate --publish mqtt://HOST:PORT/TOPIC``: the emulated detections as DeepStream's nvmsgconv would send them
(edgeexport.device.deepstream.msgconv), published with paho-mqtt. Host-side."""
import os

from ..device.deepstream.msgconv import config_entries, frame_messages
from ..device.deepstream.streams import Broker
from ..device.errors import BackendUnavailableError, UsageError
from ..device.keyfile import KeyFile

MSGCONV_CONFIG = "msgconv_config.txt"


class Publisher(object):
    """Connects on enter, publishes each frame's messages with QoS 1, waits for them on exit."""

    def __init__(self, url, payload, interval, bundle, source_text):
        self.broker = Broker(url)
        if self.broker.scheme != "mqtt":
            raise UsageError("--publish speaks MQTT; {}:// is not available here (available: mqtt)".format(
                self.broker.scheme))
        self.payload, self.interval = payload, interval
        cfg = os.path.join(bundle, MSGCONV_CONFIG)
        if os.path.isfile(cfg):  # the one deepstream_config wrote for the board: same sensor/place entries
            kf = KeyFile(cfg)
        else:
            from ..device.deepstream.app_config import msgconv_config_text
            from ..device.deepstream.streams import Source
            kf = KeyFile(text=msgconv_config_text([Source("file", source_text)]))
        self.entries = config_entries(kf, 0)
        self.sent, self._pending, self.client = 0, [], None

    def __enter__(self):
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise BackendUnavailableError("--publish needs paho-mqtt: pip install paho-mqtt")
        try:  # paho-mqtt 2.x asks for the callback API version; 1.x has no such argument
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        except AttributeError:
            self.client = mqtt.Client()
        if self.broker.user:
            self.client.username_pw_set(self.broker.user, self.broker.password or None)
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        except (OSError, ValueError) as e:
            raise BackendUnavailableError("cannot reach the MQTT broker at {}:{}: {}".format(
                self.broker.host, self.broker.port, getattr(e, "strerror", None) or e))
        self.client.loop_start()
        return self

    def frame(self, frame_num, objects):
        for message in frame_messages(frame_num, objects, self.payload, self.entries, self.interval):
            self._pending.append(self.client.publish(self.broker.topic, message, qos=1))
            self.sent += 1

    def __exit__(self, *exc):
        try:
            for info in self._pending:
                info.wait_for_publish(timeout=10)
        finally:
            self.client.loop_stop()
            self.client.disconnect()
        return False
