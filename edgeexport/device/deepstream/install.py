"""Facts about the DeepStream install and the board that decide what a config may name.

DeepStream's version comes from its own header, sources/includes/nvds_version.h (NVDS_VERSION_MAJOR/MINOR/MICRO,
:32-34 in 6.0.1 and 6.3); install folders and library paths as DeepStream's own sample configs name them.
Device-side (Python 3.6).
"""
import glob
import os
import re

from ..errors import UsageError

DEEPSTREAM_ROOTS = ("/opt/nvidia/deepstream/deepstream",)
DEVICE_TREE_MODEL = "/proc/device-tree/model"
# Versions whose config parsers we read (hiennguyen9874/deepstream-sources, one branch each): key lists in
# tests/device/deepstream_keys.json. Newer versions are written like the newest of these.
KNOWN_VERSIONS = ((6, 0), (6, 1), (6, 2), (6, 3))
# What a version flag may name: the releases whose sources the configs were checked against (KNOWN_VERSIONS), and
# the later majors this project knows exist (DeepStream 7.x-9.x, on TensorRT 10.x), written as for 6.3 with a note.
# Anything else is a typo (99.0) or a release this project has never seen (5.x has no ONNX in nvinfer's builder
# that this bundle's parser was written for).
SUPPORTED = ((6, 0), (9, 99))
SUPPORTED_TEXT = "6.0 to 9.x"


def parse_version(text):
    """'6.0.1' -> (6, 0, 1); a UsageError naming the expected form otherwise."""
    m = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?\s*$", str(text))
    if not m:
        raise UsageError("DeepStream version must look like 6.0.1 or 6.3, got {!r}".format(text))
    version = tuple(int(g) for g in m.groups(default="0"))
    if not SUPPORTED[0] <= version[:2] <= SUPPORTED[1]:
        raise UsageError("DeepStream {} is not one this edgeexport knows ({}; the configs were checked against "
                         "6.0.1-6.3's sources)".format(text.strip(), SUPPORTED_TEXT))
    return version


def version_text(version):
    return ".".join(str(v) for v in version)


def read_version_header(path):
    """The version in an nvds_version.h, or None."""
    try:
        with open(path) as f:
            text = f.read()
    except Exception:  # by design: a header we cannot read as text is not a version header
        return None
    parts = [re.search(r"#define\s+NVDS_VERSION_{}\s+(\d+)".format(k), text) for k in ("MAJOR", "MINOR", "MICRO")]
    if not all(parts):
        return None
    return tuple(int(p.group(1)) for p in parts)


def detect_install(roots=DEEPSTREAM_ROOTS):
    """(root folder, version) of the DeepStream installed here, or (None, None)."""
    candidates = list(roots) + sorted(glob.glob("/opt/nvidia/deepstream/deepstream-*"), reverse=True)
    for root in candidates:
        version = read_version_header(os.path.join(root, "sources", "includes", "nvds_version.h"))
        if version:
            return root, version
    return None, None


class DeepStream(object):
    """One DeepStream version's paths and capabilities."""

    def __init__(self, version, root=None, detected=False):
        self.version = tuple(version)
        self.detected = detected
        # DeepStream 6.0.x installs into deepstream-6.0 and its samples name that folder (samples/configs/
        # deepstream-app/source4_1080p_dec_infer-resnet_tracker_sgie_tiled_display_int8.txt @6.0.1: ll-lib-file);
        # from 6.1 the samples name the deepstream symlink.
        self.root = root or ("/opt/nvidia/deepstream/deepstream-6.0" if self.version[:2] == (6, 0)
                             else "/opt/nvidia/deepstream/deepstream")

    @property
    def text(self):
        return version_text(self.version)

    @property
    def newer_than_known(self):
        return self.version[:2] > KNOWN_VERSIONS[-1]

    def lib(self, name):
        return os.path.join(self.root, "lib", name)

    @property
    def tracker_lib(self):
        # the unified tracker library of 6.0+ (the same samples' ll-lib-file)
        return self.lib("libnvds_nvmultiobjecttracker.so")

    def sample_config(self, name):
        return os.path.join(self.root, "samples", "configs", "deepstream-app", name)

    def protocol_adaptor(self, scheme):
        """The nvmsgbroker protocol adaptor library for mqtt/kafka/amqp; UsageError where this version has none.
        The adaptors' sources ship under sources/libs/<name>_protocol_adaptor: kafka and amqp in 6.0.1 onwards,
        mqtt from 6.3 (absent from 6.0.1, 6.1, 6.1.1 and 6.2)."""
        libs = {"kafka": "libnvds_kafka_proto.so", "amqp": "libnvds_amqp_proto.so", "mqtt": "libnvds_mqtt_proto.so"}
        if scheme not in libs:
            raise UsageError("no DeepStream protocol adaptor for {!r}; available: {}".format(
                scheme, ", ".join(sorted(libs))))
        if scheme == "mqtt" and self.version[:2] < (6, 3):
            raise UsageError("DeepStream {} has no MQTT protocol adaptor (it comes with 6.3): use kafka:// or "
                             "amqp://, or DeepStream 6.3 or newer".format(self.text))
        return self.lib(libs[scheme])


def deepstream_for(version_flag=None, roots=DEEPSTREAM_ROOTS):
    """The DeepStream to write for: ``--deepstream-version`` when given, else the one installed here; None when
    neither (callers that need version facts then ask for the flag)."""
    root, installed = detect_install(roots)
    if version_flag:
        wanted = parse_version(version_flag)
        if installed and installed[:2] != wanted[:2]:
            root = None  # writing for another board: use that version's own paths
        return DeepStream(wanted, root)
    if installed:
        return DeepStream(installed, root, detected=True)
    return None


def board_model(path=DEVICE_TREE_MODEL):
    """The Jetson's model string from the device tree ('' elsewhere)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip("\x00\n ")
    except (IOError, OSError):
        return ""


def has_hardware_encoder(model=None):
    """False on a Jetson Orin Nano: "The NVIDIA Jetson Orin Nano does not have the NVENC engine" (Jetson Linux
    Developer Guide r35.3.1, "Software Encode in Orin Nano"). True on every other Jetson and on dGPUs; None when
    this machine is neither a Jetson nor has DeepStream (a config written for another board)."""
    model = board_model() if model is None else model
    if "Orin Nano" in model:
        return False
    if "Jetson" in model:
        return True
    return None
