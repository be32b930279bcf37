"""What a source and a sink are, in one place: the deepstream-app config writer and the pyds app both read these.

A source is given as one string:

    clip.mp4 | clip.mkv | clip.avi | clip.h264 ...   a file (H.264/H.265 in any container, MJPEG AVI or stream)
    images/                                           a folder of JPEG images (as an MJPEG AVI, see mjpeg_avi)
    rtsp://user:pass@camera/stream                    an RTSP camera (live)
    http://camera/video.mjpg                          an HTTP stream, e.g. an IP camera's MJPEG (live)
    /dev/video0[:1280x720@30]                         a USB (V4L2) camera (live)
    csi://0[:1920x1080@30]                            a Jetson CSI camera (live)

Each maps to deepstream-app's source types (apps-common/includes/deepstream_sources.h:35-44 @6.0.1, the same in
6.3): 1 = V4L2 camera, 2 = URI (uridecodebin), 4 = RTSP (rtspsrc with reconnection), 5 = CSI camera. Never 3
(MultiURI): deepstream-app passes its uri through g_strdup_printf once per sub-source
(deepstream_app_config_parser.c:466-487 @6.0.1), so a '%' in a path breaks it.
Device-side (Python 3.6).
"""
import os
import re
import struct

from ..errors import InputFileError, UsageError

DEFAULT_CAMERA = (1280, 720, 30)
RTSP_LATENCY_MS = 200
RTSP_RECONNECT_S = 10
LIVE_KINDS = ("rtsp", "http", "usb", "csi")


def _camera_mode(text, where):
    """'1280x720@30' -> (1280, 720, 30)."""
    if not text:
        return DEFAULT_CAMERA
    m = re.match(r"^(\d+)x(\d+)(?:@(\d+))?$", text)
    if not m or int(m.group(1)) < 2 or int(m.group(2)) < 2 or (m.group(3) and int(m.group(3)) < 1):
        raise UsageError("{}: camera mode must look like 1280x720@30, got {!r}".format(where, text))
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or DEFAULT_CAMERA[2])


def network_uri(text):
    """An rtsp:// or http:// URI as GStreamer takes it: a host, a port that is a TCP port, no raw blank (a URI
    carries a space as %20: gst_uri_from_string stops at it). Returned as given."""
    from urllib.parse import urlsplit
    if any(c.isspace() for c in text):
        raise UsageError("--source {!r} has a blank in it: a URI writes a space as %20".format(redact(text)))
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:  # urlsplit refuses a port that is not a number in 0-65535
        raise UsageError("--source {!r} is not a valid URI: {}".format(redact(text), e))
    if not parts.hostname:
        raise UsageError("--source {!r} names no host (expected {}://HOST[:PORT]/PATH)".format(
            redact(text), parts.scheme))
    if port is not None and not 0 < port < 65536:
        raise UsageError("--source {!r}: port {} is not a TCP port (1-65535)".format(redact(text), port))
    return text


def file_uri(path):
    """``file://`` + ``path`` percent-encoded (RFC 3986): a blank, '%' or '#' in a file name stays part of the name.
    GStreamer turns a file URI back into a path with g_uri_unescape_string (gst_uri_get_location); deepstream-app
    only makes a relative one absolute first (deepstream_config_file_parser.c, parse_source: "file://" +
    get_absolute_file_path, @6.0.1)."""
    from urllib.parse import quote
    return "file://" + quote(path, safe="/")


class Source(object):
    """One input stream. ``kind``: file, images, rtsp, http, usb or csi; ``uri`` for URI kinds; ``device`` (the N of
    /dev/videoN or csi://N) and ``mode`` (width, height, fps) for cameras; ``size`` the frame size when known."""

    def __init__(self, kind, text, uri=None, path=None, device=None, mode=None, size=None):
        self.kind, self.text, self.uri, self.path = kind, text, uri, path
        self.device, self.mode, self.size = device, mode, size

    @property
    def live(self):
        return self.kind in LIVE_KINDS

    @classmethod
    def parse(cls, text, base_dir="."):
        if not text or not text.strip():
            raise UsageError("--source is empty")
        if any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise UsageError("--source {!r} holds a control character (a newline?): not a file, camera or "
                             "URI".format(text))
        text = text.strip()
        low = text.lower()
        if low.startswith("rtsp://") or low.startswith("rtsps://"):
            return cls("rtsp", text, uri=network_uri(text))
        if low.startswith("http://") or low.startswith("https://"):
            return cls("http", text, uri=network_uri(text))
        m = re.match(r"^csi://(\d+)(?::(.*))?$", text)
        if m:
            mode = _camera_mode(m.group(2), text)
            return cls("csi", text, device=int(m.group(1)), mode=mode, size=mode[:2])
        m = re.match(r"^/dev/video(\d+)(?::(.*))?$", text)
        if m:
            mode = _camera_mode(m.group(2), text)
            return cls("usb", text, device=int(m.group(1)), mode=mode, size=mode[:2])
        path = text[len("file://"):] if low.startswith("file://") else text
        path = os.path.abspath(os.path.join(base_dir, os.path.expanduser(path)))
        if os.path.isdir(path):
            return cls("images", text, path=path)
        if not os.path.isfile(path):
            raise InputFileError("source {!r}: no such file or folder ({}); a source is a file, an image folder, "
                                 "rtsp://..., http://..., /dev/videoN or csi://N".format(text, path))
        return cls("file", text, uri=file_uri(path), path=path, size=video_file_size(path))

    def describe(self):
        """The source for a log line or a config comment: its kind, its text without credentials, its mode."""
        extra = ""
        if self.mode:
            extra = " {}x{}@{}".format(*self.mode)
        elif self.size:
            extra = " {}x{}".format(*self.size)
        return "{} {}{}".format(self.kind, redact(self.text), extra)


def _mp4_boxes(f, end):
    while f.tell() + 8 <= end:
        start = f.tell()
        header = f.read(8)
        size, kind = struct.unpack(">I4s", header)
        if size == 1:
            size = struct.unpack(">Q", f.read(8))[0]
        elif size == 0:
            size = end - start
        if size < 8:
            return
        yield kind, start, size, f.tell()
        f.seek(start + size)


def _mp4_video_size(f, end):
    """Width and height of the first video track: moov/trak/tkhd holds them as 16.16 fixed point (ISO/IEC 14496-12,
    TrackHeaderBox), tracks without a size (audio) have zeros."""
    for kind, start, size, body in _mp4_boxes(f, end):
        if kind in (b"moov", b"trak"):
            f.seek(body)
            found = _mp4_video_size(f, start + size)
            if found:
                return found
            f.seek(start + size)
        elif kind == b"tkhd":
            f.seek(body)
            version = f.read(1)[0]
            f.seek(body + (88 if version == 1 else 76))  # past flags, times, ids, duration, layer..matrix
            w, h = struct.unpack(">II", f.read(8))
            if w >> 16 and h >> 16:
                return w >> 16, h >> 16
            f.seek(start + size)
    return None


def _avi_size(f):
    """Width and height from an AVI's main header (avih: dwWidth, dwHeight at offset 32 of its data)."""
    f.seek(0)
    head = f.read(4096)
    i = head.find(b"avih")
    if i < 0 or i + 8 + 40 > len(head):
        return None
    w, h = struct.unpack("<II", head[i + 8 + 32:i + 8 + 40])
    return (w, h) if w and h else None


def video_file_size(path):
    """(width, height) of an MP4/MOV or AVI file, read from its headers (no decoder needed); None when unknown."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            end = f.tell()
            f.seek(0)
            magic = f.read(12)
            if magic[:4] == b"RIFF" and magic[8:12] == b"AVI ":
                return _avi_size(f)
            if magic[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
                f.seek(0)
                return _mp4_video_size(f, end)
    except Exception:  # by design: whatever is unreadable or not these containers leaves the size unknown
        return None
    return None


_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def has_credentials(text):
    """Whether ``text`` holds a URI with user information (``rtsp://user:password@camera/...``)."""
    return bool(_USERINFO.search(text or ""))


def redact(text):
    """``text`` with the user information of every URI in it removed: what may go into a message or a log."""
    return _USERINFO.sub(r"\1", text or "")


SINK_KINDS = ("display", "file", "rtsp", "fake", "msgbroker")
BROKER_CONFIG = "msgbroker_config.txt"  # the protocol adaptor's own config (msg-broker-config), owner-only
BROKER_SCHEMES = ("mqtt", "kafka", "amqp")


class Broker(object):
    """``mqtt://host:port/topic`` (also kafka://, amqp://user:password@host:port/topic) -> the protocol adaptor's
    connection string and topic. Connection strings as the adaptors' own test programs write them:
    "host;port" for Kafka and MQTT, "host;port;username;password" for AMQP (sources/libs/*_protocol_adaptor/test_*)."""

    DEFAULT_PORTS = {"mqtt": 1883, "kafka": 9092, "amqp": 5672}

    def __init__(self, url):
        m = re.match(r"^(\w+)://(?:([^:@/]*)(?::([^@/]*))?@)?([^:/]+)(?::(\d+))?/(.+)$", url or "")
        if not m:
            raise UsageError("--broker must look like mqtt://HOST:PORT/TOPIC (or kafka://, amqp://), got {!r}".format(
                url))
        self.scheme = m.group(1).lower()
        if self.scheme not in BROKER_SCHEMES:
            raise UsageError("--broker scheme {!r} is not one DeepStream has an adaptor for; available: {}".format(
                self.scheme, ", ".join(BROKER_SCHEMES)))
        self.user, self.password, self.host = m.group(2) or "", m.group(3) or "", m.group(4)
        self.port = int(m.group(5) or self.DEFAULT_PORTS[self.scheme])
        self.topic = m.group(6)
        self.lib = None  # the protocol adaptor library, chosen for a DeepStream version (deepstream_install)
        if not 0 < self.port < 65536:
            raise UsageError("--broker port {} is not a TCP port".format(self.port))

    @property
    def conn_str(self):
        """nvmsgbroker's conn-str. Kafka's is "host;port[;topic]": its adaptor refuses more than two ';'
        (is_valid_kafka_connection_str, nvds_kafka_proto.cpp:278-300 @6.0.1), so credentials go in its proto-cfg;
        MQTT's adaptor takes them from its config's username/password (mqtt_protocol_adaptor README and
        cfg_mqtt.txt @6.3); AMQP's conn-str is "host;port;username;password" (amqp_protocol_adaptor README
        @6.0.1), the one that carries them (the config holding it is then written owner-only)."""
        parts = [self.host, str(self.port)]
        if self.scheme == "amqp":
            parts += [self.user or "guest", self.password or "guest"]
        return ";".join(parts)

    @property
    def secret_in_conn_str(self):
        return self.scheme == "amqp" and bool(self.user or self.password)

    def config_text(self):
        """The adaptor's config file (nvmsgbroker's ``config``, deepstream-app's ``msg-broker-config``) holding
        the credentials, or None when there are none to hold there. Kafka: SASL/PLAIN over TLS in proto-cfg, as
        DeepStream's Security_Setup.md:375-380 (kafka_protocol_adaptor @6.0.1) sets it; proto-cfg is split at
        ';' and '=' (nvds_kafka_parse_proto_cfg, :54-90), which a credential may therefore not hold."""
        if any(c in value for value in (self.user, self.password) for c in "\r\n"):
            raise UsageError("a broker user name or password may not hold a line break")
        if not (self.user or self.password) or self.scheme == "amqp":
            return None
        if self.scheme == "kafka":
            for value in (self.user, self.password):
                if any(c in value for c in ';="\n'):
                    raise UsageError("a Kafka user name or password may not hold ';', '=', '\"' or a newline: the "
                                     "adaptor's proto-cfg splits on them")
            return ('[message-broker]\nproto-cfg = "security.protocol=sasl_ssl;sasl.mechanism=PLAIN;'
                    'sasl.username={};sasl.password={}"\n').format(self.user, self.password)
        return "[message-broker]\nusername = {}\npassword = {}\n".format(self.user, self.password)


class Sink(object):
    """One output. ``kind``: display, file (``path``), rtsp (``port``), fake or msgbroker (``broker``)."""

    def __init__(self, kind, path=None, port=None, broker=None):
        if kind not in SINK_KINDS:
            raise UsageError("sink {!r}; available: {}".format(kind, ", ".join(SINK_KINDS)))
        self.kind, self.path, self.port, self.broker = kind, path, port, broker
