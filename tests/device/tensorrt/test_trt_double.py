"""The TensorRT double is held to the real thing: its 10.x names exist in tensorrt-stubs 10.13 (PyPI), each
generation has the API that generation's bindings have, and the behaviours it implements are the ones its
sources describe (plugin registry, noexcept callbacks, bool returns, None from a bad deserialise)."""
import ast
import os
import subprocess
import sys

import numpy as np
import pytest

from .trt_double import GENERATIONS, FakeCuda, make_tensorrt

STUBS = os.path.join(sys.prefix, "stubs", "tensorrt_bindings", "tensorrt.pyi")
TEST_ONLY = {"calls", "generation", "memory"}  # the double's own inspection handles, not TensorRT API


def _stub_members():
    """{class name: set of member names} and the module's names, from tensorrt-stubs' .pyi (parsed, not imported)."""
    if not os.path.isfile(STUBS):
        pytest.fail("tensorrt-stubs are missing at {}: run scripts/setup.sh".format(STUBS))
    tree = _parse_generated_stub(open(STUBS).read())
    classes, module = {}, set()

    def members(cls):
        out = set()
        for node in cls.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                out.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                out.add(node.target.id)
            elif isinstance(node, ast.Assign):
                out.update(t.id for t in node.targets if isinstance(t, ast.Name))
        return out

    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            classes[node.name] = members(node)
            for inner in node.body:
                if isinstance(inner, ast.ClassDef):
                    classes["{}.{}".format(node.name, inner.name)] = members(inner)
            module.add(node.name)
        elif isinstance(node, ast.FunctionDef):
            module.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            module.add(node.target.id)
    return classes, module


def _parse_generated_stub(text):
    """ast of the .pyi; a signature the stub generator wrote invalidly (a parameter without a default after ones
    with defaults, as in add_scale_nd) is replaced by ``def name(*args):``, keeping the name, which is what
    this check reads."""
    lines = text.splitlines()
    for _ in range(100):
        try:
            return ast.parse("\n".join(lines))
        except SyntaxError as e:
            bad = lines[e.lineno - 1]
            name = bad.split("def ", 1)[1].split("(", 1)[0] if "def " in bad else None
            if name is None:
                raise
            lines[e.lineno - 1] = bad[:len(bad) - len(bad.lstrip())] + "def {}(*args):".format(name)
    raise AssertionError("tensorrt-stubs did not parse")


def _tiny_onnx():
    from onnx import TensorProto, helper
    node = helper.make_node("Relu", ["input"], ["boxes"], name="relu")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 3, 4, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def _objects(trt):
    """One object of every class the double hands out, built the way edgeexport reaches them."""
    logger = trt.Logger()
    builder = trt.Builder(logger)
    config = builder.create_builder_config()
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(_tiny_onnx())
    plan = builder.build_serialized_network(network, config)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    return {"Logger": logger, "Builder": builder, "IBuilderConfig": config, "INetworkDefinition": network,
            "OnnxParser": parser, "IOptimizationProfile": builder.create_optimization_profile(),
            "ICudaEngine": engine, "IExecutionContext": engine.create_execution_context(),
            "ILayer": network.get_layer(0), "ITimingCache": config.create_timing_cache(b"")}


def _public(obj):
    """Public names an object (or a class) carries itself, its classes' included (not ``object``'s/``type``'s)."""
    classes = obj.__mro__ if isinstance(obj, type) else type(obj).__mro__
    names = {n for c in classes if c is not object for n in vars(c) if not n.startswith("_")}
    if not isinstance(obj, type):
        names |= {n for n in getattr(obj, "__dict__", {}) if not n.startswith("_")}
    return names


def test_generation_10_invents_no_api():
    classes, module = _stub_members()
    trt = make_tensorrt("10")
    invented = []
    for name in dir(trt):
        if name.startswith("_") or name in TEST_ONLY:
            continue
        if name not in module:
            invented.append(name)
        value = getattr(trt, name)
        if isinstance(value, type) and name in classes:
            for member in _public(value):
                if member not in classes[name] and not (name == "ILogger" and member in
                                                        classes.get("ILogger.Severity", ())):
                    invented.append("{}.{}".format(name, member))
    for cls_name, obj in _objects(trt).items():
        for member in _public(obj):
            if member not in classes.get(cls_name, ()):
                invented.append("{}.{}".format(cls_name, member))
    assert invented == [], "the double has names tensorrt-stubs 10.13 does not: {}".format(invented)


def test_each_generation_has_its_own_api():
    """From python/src/infer/pyCore.cpp at tags 8.2.1, v8.6.1, v10.0.0 and v11.1."""
    t82, t86, t10, t11 = (make_tensorrt(g) for g in ("8.2", "8.6", "10", "11"))
    c82, c86, c10, c11 = (_objects(t) for t in (t82, t86, t10, t11))
    assert hasattr(c82["ICudaEngine"], "num_bindings") and not hasattr(c82["ICudaEngine"], "num_io_tensors")
    assert not hasattr(c82["IBuilderConfig"], "set_memory_pool_limit") and hasattr(c82["Builder"], "build_engine")
    assert hasattr(c86["ICudaEngine"], "num_bindings") and hasattr(c86["ICudaEngine"], "num_io_tensors")
    assert not hasattr(c10["ICudaEngine"], "num_bindings") and not hasattr(c10["Builder"], "build_engine")
    assert not hasattr(c10["IExecutionContext"], "execute_async_v2")
    with pytest.raises(AttributeError):
        c10["IBuilderConfig"].max_workspace_size = 1
    assert not hasattr(t11.BuilderFlag, "FP16") and not hasattr(t11.BuilderFlag, "OBEY_PRECISION_CONSTRAINTS")
    assert not hasattr(t11.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    assert not hasattr(t11, "IInt8EntropyCalibrator2") and not hasattr(c11["Builder"], "platform_has_fast_fp16")
    with pytest.raises(AttributeError):
        c11["IBuilderConfig"].int8_calibrator = object()
    with pytest.raises(AttributeError):
        c11["ILayer"].precision = t11.float32


def _nms_onnx(tmp_path_factory=None):
    from onnx import TensorProto, helper
    node = helper.make_node("EfficientNMS_TRT", ["boxes", "scores"], ["num_detections", "detection_boxes",
                                                                       "detection_scores", "detection_classes"],
                            name="efficient_nms", domain="TRT", plugin_version="1", background_class=-1,
                            max_output_boxes=10, score_threshold=0.1, iou_threshold=0.5, score_activation=0,
                            box_coding=0)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 8, 4]),
                      helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 8, 2])],
        [helper.make_tensor_value_info("num_detections", TensorProto.INT32, [1, 1]),
         helper.make_tensor_value_info("detection_boxes", TensorProto.FLOAT, [1, 10, 4]),
         helper.make_tensor_value_info("detection_scores", TensorProto.FLOAT, [1, 10]),
         helper.make_tensor_value_info("detection_classes", TensorProto.INT32, [1, 10])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("TRT", 1)])


@pytest.mark.parametrize("gen", sorted(GENERATIONS))
def test_the_plugin_registry(gen):
    """Parsing a plugin node needs registered plugins from 10.0 on (8.x's parser registers them itself); an engine
    holding a plugin does not deserialise in a process that has not registered them: None, not an exception."""
    trt = make_tensorrt(gen)
    logger = trt.Logger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    data = _nms_onnx().SerializeToString()
    if gen in ("10", "11"):
        assert not parser.parse(data) and "Plugin not found" in parser.get_error(0).desc()
        trt.init_libnvinfer_plugins(logger, "")
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
    assert parser.parse(data)
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    fresh = make_tensorrt(gen)  # another process: nothing registered yet
    assert fresh.Runtime(fresh.Logger()).deserialize_cuda_engine(plan) is None
    fresh.init_libnvinfer_plugins(fresh.Logger(), "")
    assert fresh.Runtime(fresh.Logger()).deserialize_cuda_engine(plan) is not None


def test_engines_belong_to_one_tensorrt_and_one_gpu():
    trt = make_tensorrt("10", "desktop")
    logger = trt.Logger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    trt.OnnxParser(network, logger).parse(_tiny_onnx())
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    assert make_tensorrt("10", "orin").Runtime(logger).deserialize_cuda_engine(plan) is None
    assert make_tensorrt("8.6", "desktop").Runtime(logger).deserialize_cuda_engine(plan) is None
    assert trt.Runtime(logger).deserialize_cuda_engine(b"\x00garbage") is None


@pytest.mark.parametrize("gen", sorted(GENERATIONS))
def test_shapes_and_execution_return_bool(gen):
    cuda = FakeCuda()
    trt = make_tensorrt(gen, cuda=cuda)
    objs = _objects(trt)
    ctx = objs["IExecutionContext"]
    if gen == "8.2":
        assert ctx.set_binding_shape(0, (1, 3, 4, 4)) is True and ctx.set_binding_shape(0, (1, 3, 5, 4)) is False
        assert ctx.execute_async_v2([0, 0][:1], 7) is False  # not every binding given
        return
    assert ctx.set_input_shape("input", (1, 3, 4, 4)) is True and ctx.set_input_shape("input", (2, 3, 4, 4)) is False
    assert ctx.set_tensor_address("nope", 1) is False
    assert ctx.execute_async_v3(7) is False  # no addresses set
    ptr_in, _ = cuda.device_alloc(3 * 16 * 4)
    ptr_out, _ = cuda.device_alloc(3 * 16 * 4)
    with pytest.raises(TypeError, match="pageable"):  # as pycuda: the copies take page-locked memory only
        cuda.htod(ptr_in, -np.ones(48, np.float32))
    host = cuda.pinned_empty(48, np.float32)
    host[:] = -1
    cuda.htod(ptr_in, host)
    assert ctx.set_tensor_address("input", ptr_in) and ctx.set_tensor_address("boxes", ptr_out)
    assert ctx.execute_async_v3(7) is True
    cuda.dtoh(host, ptr_out)
    assert (host == 0).all()  # Relu(-1)
    cuda.pinned_free(host)
    assert not cuda.pinned


CALLBACK = r'''
import sys
sys.path.insert(0, {tests!r})
from device.tensorrt.trt_double import make_tensorrt
trt = make_tensorrt({gen!r})
logger = trt.Logger()
builder = trt.Builder(logger)
network = builder.create_network(0)
import onnx
from onnx import TensorProto, helper
node = helper.make_node("Relu", ["input"], ["boxes"], name="relu")
graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 4, 4])],
                          [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 3, 4, 4])])
trt.OnnxParser(network, logger).parse(helper.make_model(graph).SerializeToString())
class Broken(trt.IInt8EntropyCalibrator2):
    def get_batch(self, names):
        raise OSError("cannot read image 7.jpg")
    def read_calibration_cache(self):
        return None
    def write_calibration_cache(self, cache):
        pass
config = builder.create_builder_config()
config.set_flag(trt.BuilderFlag.INT8)
config.int8_calibrator = Broken()
plan = builder.build_serialized_network(network, config)
print("build returned", plan is not None)
'''


@pytest.mark.parametrize("gen", ["8.2", "8.6", "10"])
def test_an_exception_in_a_calibrator_callback(gen):
    """8.2: std::terminate, no message (the process dies of SIGABRT); 8.4+: printed, then "no more batches"."""
    tests = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-c", CALLBACK.format(tests=tests, gen=gen)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    if gen == "8.2":
        assert r.returncode == -6 and "build returned" not in r.stdout, (r.returncode, r.stdout, r.stderr)
    else:
        assert r.returncode == 0 and "build returned True" in r.stdout
        assert "[ERROR] Exception caught in get_batch(): cannot read image 7.jpg" in r.stderr


def test_a_second_logger_is_warned_about():
    trt = make_tensorrt("8.2")
    first, second = trt.Logger(), trt.Logger()
    trt.Builder(first)
    trt.Runtime(second)
    assert ("logger_differs", "createInferRuntime") in trt.calls
