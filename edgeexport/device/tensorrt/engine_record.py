"""What an engine was built from, written beside it as ``<engine>.json``, so that a stale engine is never used.

nvinfer itself does not check that an engine matches its ONNX: it loads ``model-engine-file`` whenever that file
deserialises (DeepStream rebuilds only when the file is missing or fails to load, or the batch or input dims
differ). A re-exported model.onnx therefore keeps running the old engine under nvinfer. build_engine rebuilds
when this record does not match; parity, the TensorRT runner and trt_fps refuse an engine without a matching
record. Device-side (Python 3.6).
"""
import json
import os
import time

from ..errors import InputFileError
from ..fileio import atomic_write_text

RECORD_SUFFIX = ".json"
# What must match for an engine to be reused (build_engine) or run (parity, runner, trt_fps).
BUILD_KEYS = ("onnx_file", "onnx_sha256", "tensorrt_version", "gpu_name", "compute_capability", "precision",
              "batch_size", "dynamic_batch", "layout", "dla_core", "nms_fp32")
RUN_KEYS = ("tensorrt_version", "gpu_name", "compute_capability", "engine_sha256")


def record_path(engine_path):
    return engine_path + RECORD_SUFFIX


class EngineRecord(object):
    """The build's facts: ONNX and its sha256, TensorRT version, GPU (name, compute capability), precision,
    batch, workspace, layout, DLA core, whether the NMS plugin was held in FP32, build time, the engine's sha256."""

    def __init__(self, **fields):
        self.fields = dict(fields)

    def __getitem__(self, key):
        return self.fields.get(key)

    def save(self, engine_path):
        atomic_write_text(record_path(engine_path), json.dumps(self.fields, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, engine_path):
        """The record beside ``engine_path``, or None when there is none or it is not one (by design: anything
        unreadable is "no record", and the engine is then treated as of unknown origin)."""
        try:
            with open(record_path(engine_path)) as f:
                fields = json.load(f)
        except Exception:  # missing, unreadable, not JSON: no record
            return None
        return cls(**fields) if isinstance(fields, dict) else None

    def mismatches(self, expected, keys):
        """Human-readable differences from ``expected`` (a dict) on ``keys``."""
        out = []
        for key in keys:
            if key in expected and self.fields.get(key) != expected[key]:
                out.append("{} {} (built) vs {} (now)".format(key, _show(self.fields.get(key)), _show(expected[key])))
        return out


def _show(value):
    return "none" if value is None else repr(value) if isinstance(value, str) else str(value)


def new_record(onnx_file, onnx_sha256, trt_version, gpu, precision, batch_size, dynamic_batch, layout, dla_core,
               nms_fp32, workspace_mib, engine_sha256):
    return EngineRecord(onnx_file=onnx_file, onnx_sha256=onnx_sha256, tensorrt_version=trt_version,
                        gpu_name=gpu.get("name"), compute_capability=gpu.get("compute_capability"),
                        precision=precision, batch_size=int(batch_size), dynamic_batch=bool(dynamic_batch),
                        layout=layout, dla_core=dla_core, nms_fp32=bool(nms_fp32), workspace_mib=int(workspace_mib),
                        engine_sha256=engine_sha256, built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


def check_runnable(engine_path, trt_version, gpu, engine_sha256, meta=None, fix=None):
    """Refuse an engine that has no record, or was built by another TensorRT, for another GPU, from another ONNX
    than the bundle's (``meta``: its BundleMeta), or was replaced since it was built. One line, with ``fix``."""
    fix = fix or "python3 -m edgeexport.build_engine BUNDLE --force"
    record = EngineRecord.load(engine_path)
    if record is None:
        raise InputFileError("{} has no build record ({}): its origin is unknown, so it is not run; rebuild it: "
                             "{}".format(engine_path, os.path.basename(record_path(engine_path)), fix))
    expected = {"tensorrt_version": trt_version, "gpu_name": gpu.get("name"),
                "compute_capability": gpu.get("compute_capability"), "engine_sha256": engine_sha256}
    problems = record.mismatches(expected, RUN_KEYS)
    if meta is not None:
        want = meta.graph_sha256(record["onnx_file"])
        if want is None or record["onnx_sha256"] != want:
            problems.append("it was built from another ONNX than the bundle's {} (sha256 {}... vs {}...)".format(
                record["onnx_file"], str(record["onnx_sha256"])[:12], str(want)[:12]))
    if problems:
        raise InputFileError("{} does not match this machine and bundle ({}): rebuild it: {}".format(
            engine_path, "; ".join(problems), fix))
    return record
