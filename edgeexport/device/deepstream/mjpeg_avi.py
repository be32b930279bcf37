"""A folder of JPEG images as a Motion-JPEG AVI, in pure Python: how an image folder becomes a DeepStream source.

deepstream-app has no image-folder source (its source types are V4L2, URI, MultiURI, RTSP and CSI:
apps-common/includes/deepstream_sources.h:35-44 @6.0.1), but its URI source decodes an MJPEG AVI like any clip
(uridecodebin: avidemux, then a JPEG decoder; the hardware decoder takes MJPEG, Gst-nvvideo4linux2 in the
DeepStream plugin manual). The JPEG bytes go in unchanged: no re-encoding, nothing lost. A sidecar lists the
images in frame order, so results map back to file names.

Layout (Microsoft's "AVI RIFF File Reference"): RIFF 'AVI ' { LIST 'hdrl' { 'avih', LIST 'strl' { 'strh', 'strf' } },
LIST 'movi' { '00dc' per frame }, 'idx1' }. Device-side (Python 3.6, standard library only).
"""
import json
import os
import struct

from ..errors import InputFileError
from ..fileio import atomic_write_text, atomic_write_with

JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe")
AVIF_HASINDEX = 0x10
AVIIF_KEYFRAME = 0x10


def jpeg_size(data, name="<bytes>"):
    """(width, height) from a JPEG's start-of-frame marker; InputFileError for anything that is not a JPEG."""
    if data[:2] != b"\xff\xd8":
        raise InputFileError("{} is not a JPEG image (no SOI marker)".format(name))
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        # SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            if width and height:
                return width, height
            break
        i += 2 + length
    raise InputFileError("{} is not a readable JPEG image (no frame size found)".format(name))


def list_images(folder):
    """The JPEG files of ``folder`` in name order; InputFileError when there are none or others are present."""
    try:
        names = sorted(os.listdir(folder))
    except (IOError, OSError) as e:
        raise InputFileError("cannot list {}: {}".format(folder, e.strerror or e))
    jpegs = [n for n in names if n.lower().endswith(JPEG_SUFFIXES) and os.path.isfile(os.path.join(folder, n))]
    if not jpegs:
        raise InputFileError("{} holds no JPEG images (.jpg/.jpeg): an image folder source reads JPEG files, which "
                             "go to the decoder unchanged".format(folder))
    return [os.path.join(folder, n) for n in jpegs]


def _chunk(fourcc, payload):
    pad = b"\x00" if len(payload) % 2 else b""
    return fourcc + struct.pack("<I", len(payload)) + payload + pad


def _list(kind, payload):
    return _chunk(b"LIST", kind + payload)


def _read(path, limit=None):
    try:
        with open(path, "rb") as f:
            return f.read() if limit is None else f.read(limit)
    except (IOError, OSError) as e:
        raise InputFileError("cannot read {}: {}".format(path, e.strerror or e))


def write_mjpeg_avi(images, out_path, fps=30):
    """Write ``images`` (JPEG paths, all one size) as an MJPEG AVI at ``out_path`` plus ``<out_path>.frames.json``;
    returns (width, height, frame count). Streams the files: a folder larger than memory is fine."""
    if not images:
        raise InputFileError("no images to write")
    lengths, size = [], None
    for path in images:
        wh = jpeg_size(_read(path, 1 << 16), path)  # the frame header sits near the start
        if size is None:
            size = wh
        elif wh != size:
            raise InputFileError("{} is {}x{}, the images before it {}x{}: one stream has one frame size (resize "
                                 "the images, or split the folder)".format(path, wh[0], wh[1], size[0], size[1]))
        lengths.append(os.path.getsize(path))
    width, height = size
    n, biggest = len(images), max(lengths)
    avih = struct.pack("<10I4I", int(1e6 / fps), biggest * fps, 0, AVIF_HASINDEX, n, 0, 1, biggest, width, height,
                       0, 0, 0, 0)
    strh = struct.pack("<4s4sIHHIIIIIIIIhhhh", b"vids", b"MJPG", 0, 0, 0, 0, 1, int(fps), 0, n, biggest, 0xFFFFFFFF,
                       0, 0, 0, width, height)
    strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0)
    hdrl = _list(b"hdrl", _chunk(b"avih", avih) + _list(b"strl", _chunk(b"strh", strh) + _chunk(b"strf", strf)))
    chunk_sizes = [8 + k + k % 2 for k in lengths]
    index, offset = [], 4  # idx1 offsets count from the 'movi' fourcc
    for k, c in zip(lengths, chunk_sizes):
        index.append(struct.pack("<4sIII", b"00dc", AVIIF_KEYFRAME, offset, k))
        offset += c
    idx1 = _chunk(b"idx1", b"".join(index))
    movi_size = 4 + sum(chunk_sizes)
    riff_size = 4 + len(hdrl) + 8 + movi_size + len(idx1)

    def write(f):
        f.write(b"RIFF" + struct.pack("<I", riff_size) + b"AVI " + hdrl)
        f.write(b"LIST" + struct.pack("<I", movi_size) + b"movi")
        for path, k in zip(images, lengths):
            data = _read(path)
            if len(data) != k:
                raise InputFileError("{} changed while the AVI was written".format(path))
            f.write(_chunk(b"00dc", data))
        f.write(idx1)

    atomic_write_with(out_path, write)
    sidecar = {"kind": "edgeexport.image_sequence", "fps": fps, "width": width, "height": height,
               "frames": [os.path.abspath(p) for p in images]}
    atomic_write_text(out_path + ".frames.json", json.dumps(sidecar, indent=1) + "\n")
    return width, height, n


def read_frame_list(avi_path):
    """The image files behind an AVI this module wrote, in frame order (None for any other video)."""
    try:
        with open(avi_path + ".frames.json") as f:
            d = json.load(f)
    except Exception:  # no sidecar, or not ours: by design "not an image sequence"
        return None
    if not isinstance(d, dict) or d.get("kind") != "edgeexport.image_sequence" or not isinstance(d.get("frames"), list):
        return None
    return [str(p) for p in d["frames"]]
