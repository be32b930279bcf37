"""The FP16 twin of a deploy graph, for strongly typed TensorRT: 11.x builds an FP16 engine only from an ONNX that
carries FP16 itself (NVIDIA, "Migrating from TensorRT 10.x to 11.x": BuilderFlag.FP16 is removed).

The rule, for this project's graphs (the deploy model's ops): every float tensor computed in FP16, except two
islands kept FP32, chosen by measurement (benchmarks/RESULTS.md, "FP16 graph"):
- the first convolution: the fold scales its weights by 1/(255*std), down to ~1e-4 where fp16 loses digits
  (measured: score drift max 0.0152 -> 0.0113 on an untrained MobileNetV3-Small, 0.0346 -> 0.0327 on -Large);
- everything after the last convolution (box decode, softmax, the EfficientNMS_TRT node): exp and softmax in
  fp32 (measured: box p99 drift 0.00042 -> 0.00009 on the trained demo model), and the NMS plugin fed fp32, so
  it never takes the half path that TensorRT 8.2 got wrong.
Inputs and outputs stay float32 (nvinfer feeds and parses float32). A Cast goes on every edge between the regions;
a float initializer or Constant used by both is duplicated. Written here rather than with a general converter:
onnxconverter-common's float16 pass mis-typed a multi-consumer edge of MobileNetV3-Large's stem (ONNX Runtime:
"Type parameter (T) of Optype (Conv) bound to different types"). Host-side (onnx, numpy).
"""
import numpy as np

from ..device.errors import ExportError

# Ops that create float tensors from attributes, whose type a region change would have to rewrite: not in the
# deploy graph, refused rather than converted wrongly.
_TYPED_OPS = ("Cast", "ConstantOfShape", "RandomNormal", "RandomUniform", "EyeLike")


FP32_ISLANDS = ("first_conv", "tail")


def fp16_twin(data, islands=FP32_ISLANDS):
    """Serialised FP16 twin of the serialised graph ``data`` (see the module's docstring). ``islands``: which of
    "first_conv" and "tail" stay FP32 (benchmarks/fp16_graph.py measures the choices)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper, shape_inference
    FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
    proto = shape_inference.infer_shapes(onnx.load_from_string(data))
    graph = proto.graph
    nodes = list(graph.node)
    convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
    if not convs:
        raise ExportError("the deploy graph has no Conv node to anchor its FP32 islands on")
    fp32 = set([convs[0]] if "first_conv" in islands else [])
    if "tail" in islands:
        fp32 |= set(range(convs[-1] + 1, len(nodes)))
    for i, n in enumerate(nodes):
        if i not in fp32 and n.op_type in _TYPED_OPS:
            raise ExportError("the FP16 graph cannot convert a {} node ({}); keep it in an FP32 island".format(
                n.op_type, n.name))

    def region(i):
        return FLOAT if i in fp32 else HALF

    inits = {t.name: t for t in graph.initializer}
    constants = {n.output[0]: n for n in nodes if n.op_type == "Constant"}

    def constant_value(node):
        return [a for a in node.attribute if a.name == "value"][0]

    # The element type of every tensor before conversion (shape inference, initializers, Constant values)
    elem = {vi.name: vi.type.tensor_type.elem_type for vi in list(graph.value_info) + list(graph.input) +
            list(graph.output)}
    elem.update({name: t.data_type for name, t in inits.items()})
    elem.update({name: constant_value(n).t.data_type for name, n in constants.items()})
    floats = {name for name, t in elem.items() if t == FLOAT}
    users = {}
    for i, n in enumerate(nodes):
        if n.op_type != "Constant":
            for name in n.input:
                users.setdefault(name, set()).add(region(i))
    producer = {o: i for i, n in enumerate(nodes) if n.op_type != "Constant" for o in n.output}
    after = {}  # the type of each float tensor once converted
    for name in floats:
        after[name] = region(producer[name]) if name in producer else FLOAT

    # Float constants used in the FP16 region become FP16 there: in place when only it uses them, else a copy
    half_copy, added = {}, []
    for name in sorted(floats & (set(inits) | set(constants))):
        regions = users.get(name, set())
        if HALF not in regions:
            continue
        array = numpy_helper.to_array(inits[name] if name in inits else constant_value(constants[name]).t)
        target = name if FLOAT not in regions else name + "_fp16"
        tensor = numpy_helper.from_array(array.astype(np.float16), target)
        if target == name:
            (inits[name] if name in inits else constant_value(constants[name]).t).CopyFrom(tensor)
            after[name] = HALF
        else:
            half_copy[name] = target
            if name in inits:
                graph.initializer.append(tensor)
            else:
                added.append(helper.make_node("Constant", [], [target], value=tensor, name=target))

    # A Cast on every float edge between the regions, one per tensor and direction
    casts = {}

    def cast(name, to):
        if (name, to) not in casts:
            out = "{}_to_{}".format(name, "fp16" if to == HALF else "fp32")
            casts[(name, to)] = out
            added.append(helper.make_node("Cast", [name], [out], to=to, name=out))
        return casts[(name, to)]

    for i, n in enumerate(nodes):
        if n.op_type == "Constant":
            continue
        for k, name in enumerate(n.input):
            if name not in floats:
                continue
            if region(i) == HALF and name in half_copy:
                n.input[k] = half_copy[name]
            elif after[name] != region(i):
                n.input[k] = cast(name, region(i))
    for out in graph.output:  # outputs stay float32 whatever region computes them
        if after.get(out.name) == HALF:
            inner = out.name + "_fp16"
            for n in nodes:
                n.output[:] = [inner if o == out.name else o for o in n.output]
                n.input[:] = [inner if o == out.name else o for o in n.input]
            added.append(helper.make_node("Cast", [inner], [out.name], to=FLOAT, name=out.name + "_to_fp32"))
    graph.node.extend(added)
    _topological_sort(graph)
    del graph.value_info[:]
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _topological_sort(graph):
    """Nodes in an order where every input is made before it is used (the Casts were appended at the end)."""
    made = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in made for i in n.input)]
        if not ready:
            raise ExportError("the FP16 graph has a cycle or a missing input")
        for n in ready:
            ordered.append(n)
            made.update(n.output)
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)
