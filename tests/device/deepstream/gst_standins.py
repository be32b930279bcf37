"""Run the pyds app (edgeexport.device.deepstream.pyds_app) under real GStreamer on a host without DeepStream:

- NVIDIA's elements are stood in by standard ones (StandInElements): nvstreammux by compositor, nvvideoconvert by
  videoconvert, the hardware encoder by x264enc, nvinfer/nvtracker/nvdsosd/the tiler by identity, the EGL and 3D
  sinks by fakesink; NVMM caps lose their memory feature. Every property the app sets on a stood-in element is
  recorded (and written to --record FILE), not applied;
- pyds is a strict fake built from the pyds-stubs package (FakePyds): a name the stubs do not declare -- a module
  function, a class, an attribute of a metadata object -- raises AttributeError, so the app cannot use API the
  bindings do not have. Its metadata: each source's frame with one detection and, for --dump, output tensors of
  the bundle's shapes.

    /usr/bin/python3 tests/device/deepstream/gst_standins.py --stubs .venv/stubs/pyds-1.1.1/pyds-stubs \
        --record rec.json -- BUNDLE --source clip.mp4 --sink file ...
Runs with the system Python (Debian's python3-gi), the repository on PYTHONPATH.
"""
import argparse
import ast
import json
import os
import sys

import numpy as np

STAND_INS = {
    "nvstreammux": "compositor", "nvvideoconvert": "videoconvert", "nvinfer": "identity", "nvtracker": "identity",
    "nvdsosd": "identity", "nvmultistreamtiler": "identity", "nvv4l2h264enc": "x264enc", "nvegltransform": "identity",
    "nveglglessink": "fakesink", "nv3dsink": "fakesink", "nvmsgconv": "identity", "nvmsgbroker": "fakesink",
    "nvarguscamerasrc": "videotestsrc", "v4l2src": "videotestsrc",
}


class StandInElements(object):
    """edgeexport.device.deepstream.pyds_app.Elements with standard elements for NVIDIA's."""

    def __init__(self, Gst):
        self.Gst = Gst
        self.records = {}
        self.made = {}
        self.asked_caps = {}  # the caps the app asked for, by the stood-in caps' text

    def make(self, factory, name, **props):
        real = STAND_INS.get(factory, factory)
        element = self.Gst.ElementFactory.make(real, name)
        assert element is not None, "no GStreamer element {} here".format(real)
        self.records[name] = {"factory": factory, "props": {}}
        self.made[name] = element
        for key, value in props.items():
            key = key.replace("_", "-")
            if isinstance(value, self.Gst.Caps):
                value_text = self.asked_caps.get(value.to_string(), value.to_string())
            else:
                value_text = value if isinstance(value, (int, float, str, bool)) else str(value)
            self.records[name]["props"][key] = value_text
            if real == factory or (real == "fakesink" and key == "sync"):  # a standard element: settings apply;
                element.set_property(key, value)  # a sink's clock sync too (a display paces the pipeline)
        if real == "x264enc" and factory != real:
            element.set_property("speed-preset", "ultrafast")
        return element

    def links(self):
        """Each element made -> the elements its src pads feed (request pads included)."""
        def owner(obj):  # a ghost pad's proxy belongs to the ghost pad, which belongs to its bin
            while obj is not None and not isinstance(obj, self.Gst.Element):
                obj = obj.get_parent()
            return obj.get_name() if obj is not None else "?"
        return {name: sorted(owner(pad.get_peer()) for pad in element.srcpads if pad.get_peer() is not None)
                for name, element in self.made.items()}

    def caps(self, text):
        caps = self.Gst.Caps.from_string(text.replace("(memory:NVMM)", ""))
        self.asked_caps[caps.to_string()] = text
        return caps

    def available(self, factory):
        return factory in STAND_INS or self.Gst.ElementFactory.find(factory) is not None


# --- pyds from its stubs ---------------------------------------------------------------------------------------
def stub_api(stub_dir):
    """{"module": {names}, "classes": {class: {names}}} declared by pyds-stubs' stub.pyi."""
    with open(os.path.join(stub_dir, "stub.pyi")) as f:
        tree = ast.parse(f.read())
    module, classes = set(), {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names = set()
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
                elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
                elif isinstance(item, ast.Assign):
                    names.update(t.id for t in item.targets if isinstance(t, ast.Name))
            classes[node.name] = names
            module.add(node.name)
        elif isinstance(node, ast.FunctionDef):
            module.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            module.add(node.target.id)
        elif isinstance(node, ast.Assign):
            module.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {"module": module, "classes": classes}


class Strict(object):
    """A pyds object: only the attributes its stub class declares; values given, else 0."""

    def __init__(self, api, cls, **values):
        object.__setattr__(self, "_api", api)
        object.__setattr__(self, "_cls", cls)
        object.__setattr__(self, "_values", values)
        unknown = set(values) - api["classes"][cls]
        assert not unknown, "the fake gives {} attributes its stub lacks: {}".format(cls, unknown)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self._api["classes"][self._cls]:
            raise AttributeError("pyds.{} has no attribute {!r} (pyds-stubs)".format(self._cls, name))
        return self._values.get(name, 0)

    def __setattr__(self, name, value):
        if name not in self._api["classes"][self._cls]:
            raise AttributeError("pyds.{} has no attribute {!r} (pyds-stubs)".format(self._cls, name))
        self._values[name] = value


class GList(object):
    """pyds' GList (pyds-stubs typing.pyi: data, next, prev)."""
    __slots__ = ("data", "next", "prev")

    def __init__(self, items):
        self.data, self.prev = items[0], None
        self.next = GList(items[1:]) if len(items) > 1 else None


def glist(items):
    return GList(items) if items else None


class Capsule(object):
    def __init__(self, array):
        self.array = np.ascontiguousarray(array)


class FakeClass(object):
    """pyds.<Class>: cast() (checked to receive an object of that class) and class-level constants."""

    def __init__(self, api, name):
        self._api, self._name = api, name

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr not in self._api["classes"][self._name]:
            raise AttributeError("pyds.{} has no attribute {!r} (pyds-stubs)".format(self._name, attr))
        if attr == "cast":
            def cast(data):
                assert isinstance(data, Strict) and data._cls == self._name, \
                    "pyds.{}.cast() given a {}".format(self._name, getattr(data, "_cls", type(data).__name__))
                return data
            return cast
        return "{}.{}".format(self._name, attr)  # an enum value


class FakePyds(object):
    def __init__(self, stub_dir, n_sources, frame_size, outputs, labels):
        self._api = stub_api(stub_dir)
        self._n, self._size, self._outputs, self._labels = n_sources, frame_size, outputs, labels
        self._batches = 0
        self.used = set()
        self.mapped = []  # (buffer, batch id) of frames mapped by get_nvds_buf_surface and not unmapped

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._api["module"]:
            raise AttributeError("module pyds has no attribute {!r} (pyds-stubs)".format(name))
        self.used.add(name)
        if name in self._api["classes"]:
            return FakeClass(self._api, name)
        impl = getattr(self, "_" + name, None)
        if impl is None:
            raise AttributeError("pyds.{} is in the stubs but not in this fake: add it".format(name))
        return impl

    def _obj(self, cls, **values):
        return Strict(self._api, cls, **values)

    def _gst_buffer_get_nvds_batch_meta(self, buffer_hash):
        assert isinstance(buffer_hash, int)
        frame_num = self._batches
        self._batches += 1
        w, h = self._size
        frames = []
        for sid in range(self._n):
            rect = self._obj("NvOSD_RectParams", left=w * 0.25, top=h * 0.25, width=w * 0.5, height=h * 0.5)
            obj = self._obj("NvDsObjectMeta", class_id=sid % len(self._labels), confidence=0.9, rect_params=rect,
                            object_id=2 ** 64 - 1)
            tensor = self._obj("NvDsInferTensorMeta", num_output_layers=len(self._outputs))
            user = self._obj("NvDsUserMeta", user_meta_data=tensor, base_meta=self._obj(
                "NvDsBaseMeta", meta_type="NvDsMetaType.NVDSINFER_TENSOR_OUTPUT_META"))
            frames.append(self._obj("NvDsFrameMeta", source_id=sid, frame_num=frame_num, batch_id=sid,
                                    obj_meta_list=glist([obj]), frame_user_meta_list=glist([user]),
                                    source_frame_width=w, source_frame_height=h))
        return self._obj("NvDsBatchMeta", frame_meta_list=glist(frames), num_frames_in_batch=len(frames))

    def _unmap_nvds_buf_surface(self, buffer_hash, batch_id):
        self.mapped.remove((buffer_hash, batch_id))  # ValueError: not mapped

    def _get_nvds_buf_surface(self, buffer_hash, batch_id):
        self.mapped.append((buffer_hash, batch_id))
        w, h = self._size
        img = np.zeros((h, w, 4), np.uint8)
        img[..., 0] = batch_id * 40
        return img

    def _get_nvds_LayerInfo(self, tensor_meta, i):
        name, array = sorted(self._outputs.items())[i]
        d = np.zeros(8, np.int32)
        d[:array.ndim] = array.shape
        dims = self._obj("NvDsInferDims", d=d, numDims=array.ndim, numElements=int(array.size))
        return self._obj("NvDsInferLayerInfo", layerName=name, buffer=Capsule(array), dims=dims,
                         dataType=3 if array.dtype == np.int32 else 0)

    def _get_ptr(self, capsule):
        return capsule.array.ctypes.data


def fake_outputs(meta):
    """Output tensors of the bundle's per-frame shapes (batch dim dropped), deterministic values."""
    rng = np.random.RandomState(0)
    out = {}
    for name, shape in meta.output_shapes().items():
        shape = tuple(shape[1:])
        out[name] = (rng.randint(0, 3, shape).astype(np.int32) if name in ("num_detections", "detection_classes")
                     else rng.rand(*shape).astype(np.float32))
    return out


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--stubs", required=True)
    p.add_argument("--record")
    p.add_argument("--machine", help="what platform.machine() says (aarch64: the app takes itself for a Jetson)")
    p.add_argument("app_args", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.machine:
        import platform
        platform.machine = lambda: args.machine
    app_args = args.app_args[1:] if args.app_args[:1] == ["--"] else args.app_args
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import GLib, Gst

    from edgeexport.device.bundle import Bundle
    from edgeexport.device.cli import run_cli
    from edgeexport.device.deepstream import pyds_app as deepstream_app
    from edgeexport.device.deepstream.app_config import mux_size, prepare_sources
    Gst.init(None)
    elements = StandInElements(Gst)
    parsed = deepstream_app.get_args_parser().parse_args(app_args)
    bundle = Bundle(parsed.bundle)
    import tempfile
    with tempfile.TemporaryDirectory() as probe_dir:
        sources, _ = prepare_sources(parsed.source, probe_dir)  # only to know the frame size the fake reports
    pyds = FakePyds(args.stubs, len(sources), mux_size(sources, parsed.mux_size), fake_outputs(bundle.meta),
                    bundle.labels)

    built = {}
    app_build = deepstream_app.App.build

    def build(self):  # the links as built, before the app tears the pipeline down
        pipeline = app_build(self)
        built["links"] = elements.links()
        return pipeline

    deepstream_app.App.build = build

    def run(a):
        try:
            return deepstream_app.main(a, Gst, GLib, pyds, elements)
        finally:
            if args.record:
                with open(args.record, "w") as f:
                    json.dump({"elements": elements.records, "links": built.get("links"), "pyds": sorted(pyds.used),
                               "still_mapped": len(pyds.mapped)}, f, indent=1)

    run_cli(deepstream_app.get_args_parser, run, app_args)


if __name__ == "__main__":
    main(sys.argv[1:])
