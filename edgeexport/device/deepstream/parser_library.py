"""Call the C++ bbox parser (the very .so DeepStream loads) from Python, through the host shim.

Used by ``python -m edgeexport.emulate``, the ``nvinfer`` row of ``evaluate`` and the tests that feed the parser
real graph outputs. Builds the bundle's parser (jetson/parser's Makefile, host headers) on first use when the
library is missing. Device-side safe (Python 3.6; ctypes, numpy, make and a C++ compiler to build it).
"""
import ctypes
import hashlib
import os
import subprocess

import numpy as np

from ..errors import BackendUnavailableError, InputFileError
from ..postprocess import Detections
from .infer_config import PARSER_FUNCTIONS, PARSER_SOURCES

MAX_DIMS = 8
DATA_TYPES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1, np.dtype(np.int8): 2, np.dtype(np.int32): 3}


class InferDims(ctypes.Structure):
    _fields_ = [("numDims", ctypes.c_uint), ("d", ctypes.c_uint * MAX_DIMS), ("numElements", ctypes.c_uint)]


class LayerInfo(ctypes.Structure):
    """Mirror of NvDsInferLayerInfo (DeepStream 6.0.1); its size is checked against the C++ one at load."""
    _fields_ = [("dataType", ctypes.c_int), ("inferDims", InferDims), ("bindingIndex", ctypes.c_int),
                ("layerName", ctypes.c_char_p), ("buffer", ctypes.c_void_p), ("isInput", ctypes.c_int)]


class ObjectInfo(ctypes.Structure):
    _fields_ = [("classId", ctypes.c_uint), ("left", ctypes.c_float), ("top", ctypes.c_float),
                ("width", ctypes.c_float), ("height", ctypes.c_float), ("detectionConfidence", ctypes.c_float)]


def build_parser(build_dir, source_dir):
    """The host variant of the parser in ``source_dir`` (a jetson/parser folder) built into ``build_dir``: the
    library and the ctypes shim, against the host headers. Returns build_dir."""
    try:
        subprocess.check_call(["make", "-s", "-C", source_dir, "HOST=1", "OUT=" + os.path.abspath(build_dir)],
                              stdout=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as e:
        raise BackendUnavailableError("cannot build the parser in {} ({}); install make and a C++ compiler".format(
            source_dir, e))
    return build_dir


class ParserLibrary(object):
    """``parse(layout, outputs, net_w, net_h, thresholds, num_classes)`` -> Detections in network pixels."""

    def __init__(self, library, shim=None):
        self.library = os.path.abspath(library)
        shim = shim or os.path.join(os.path.dirname(self.library), "libedgeexport_parser_shim.so")
        for p in (self.library, shim):
            if not os.path.isfile(p):
                raise BackendUnavailableError("parser library not found: {} (build it, in a bundle: make -C {} "
                                              "HOST=1)".format(p, PARSER_SOURCES))
        self.shim = ctypes.CDLL(shim)
        self.shim.edgeexport_call_parser.restype = ctypes.c_int
        self.shim.edgeexport_call_parser.argtypes = [
            ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(LayerInfo), ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_uint, ctypes.POINTER(ctypes.c_float), ctypes.c_int, ctypes.POINTER(ObjectInfo), ctypes.c_int,
            ctypes.POINTER(ctypes.c_int)]
        if self.shim.edgeexport_layer_info_size() != ctypes.sizeof(LayerInfo) or \
                self.shim.edgeexport_object_info_size() != ctypes.sizeof(ObjectInfo):
            raise BackendUnavailableError("the ctypes mirror of NvDsInferLayerInfo/NvDsInferObjectDetectionInfo does "
                                          "not match the compiled headers")

    @classmethod
    def from_build_dir(cls, build_dir):
        return cls(os.path.join(build_dir, "libnvdsparsebbox_edgeexport.so"))

    def call(self, function, layers, net_w, net_h, thresholds, num_classes, capacity=None):
        """Low level: ``layers`` = [(name, array without batch dim)] (or a dict), or ready LayerInfo objects.
        Returns (ok, Detections or None, total objects the parser produced)."""
        infos, keep = [], []
        items = layers.items() if isinstance(layers, dict) else layers
        for item in items:
            if isinstance(item, LayerInfo):
                infos.append(item)
                continue
            name, arr = item
            arr = np.ascontiguousarray(arr)
            keep.append(arr)
            dims = InferDims()
            dims.numDims = arr.ndim
            for i, s in enumerate(arr.shape[:MAX_DIMS]):
                dims.d[i] = s
            dims.numElements = arr.size
            infos.append(LayerInfo(DATA_TYPES.get(arr.dtype, 0), dims, len(infos), name.encode(),
                                   arr.ctypes.data_as(ctypes.c_void_p), 0))
        arr_layers = (LayerInfo * max(len(infos), 1))(*infos)
        thr = (ctypes.c_float * max(len(thresholds), 1))(*[float(t) for t in thresholds])
        # No parser emits more objects than its largest layer has elements (N*K, N or M): a bound known up front.
        capacity = capacity or max([int(i.inferDims.numElements) for i in infos] + [1])
        out = (ObjectInfo * capacity)()
        total = ctypes.c_int(0)
        n = self.shim.edgeexport_call_parser(self.library.encode(), function.encode(), arr_layers, len(infos),
                                             net_w, net_h, num_classes, thr, len(thresholds), out, capacity,
                                             ctypes.byref(total))
        if n == -2:
            raise BackendUnavailableError("{} has no symbol {}".format(self.library, function))
        if n < 0:
            return False, None, total.value
        objs = out[:n]
        boxes = np.array([[o.left, o.top, o.left + o.width, o.top + o.height] for o in objs], np.float32)
        return True, Detections(boxes.reshape(-1, 4), [o.detectionConfidence for o in objs],
                                [o.classId for o in objs]), total.value

    def parse(self, layout, outputs, net_w, net_h, thresholds, num_classes):
        ok, dets, _ = self.call(PARSER_FUNCTIONS[layout], outputs, net_w, net_h, thresholds, num_classes)
        if not ok:
            raise BackendUnavailableError("the parser rejected the outputs (see its log line on stderr)")
        return dets


def _sources_hash(folder):
    h = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.endswith((".so", ".tmp")):  # what make wrote there, not the sources
                continue
            p = os.path.join(root, name)
            h.update(os.path.relpath(p, folder).encode())
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def load_bundle_parser(bundle_dir, custom_lib=None):
    """The parser .so a bundle's config names when it exists and loads here with its host shim; else a host build
    of the bundle's own parser sources, kept in ~/.cache/edgeexport (never inside the bundle, whose jetson/parser/
    holds the Jetson's build)."""
    if custom_lib:
        shim = os.path.join(os.path.dirname(custom_lib), "libedgeexport_parser_shim.so")
        if os.path.isfile(custom_lib) and os.path.isfile(shim):
            try:
                return ParserLibrary(custom_lib, shim)
            except OSError:
                pass  # another architecture's build (the Jetson's): build for this host below
    src = os.path.join(bundle_dir, PARSER_SOURCES)
    if not os.path.isfile(os.path.join(src, "Makefile")):
        raise InputFileError("no parser library at {} and no parser sources in {}".format(custom_lib, src))
    cache = os.path.join(os.path.expanduser(os.environ.get("XDG_CACHE_HOME", "~/.cache")), "edgeexport",
                         "parser-" + _sources_hash(src))
    lib = os.path.join(cache, "libnvdsparsebbox_edgeexport.so")
    if not os.path.isfile(lib):
        build_parser(cache, src)
    return ParserLibrary(lib)
