"""The FP16 twin of the deploy graph (TensorRT 11's FP16 source): float32 at the edges, FP32 islands where they
were chosen, FP16 elsewhere, and within fp16 tolerance of the original under ONNX Runtime, for every layout."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from edgeexport.device.errors import ExportError
from edgeexport.export.fp16 import fp16_twin


@pytest.mark.parametrize("layout", ["boxes_scores", "top_class", "efficient_nms"])
def test_fp16_twin_of_every_layout(small_checkpoint, tmp_path, layout):
    from ..conftest import export_quietly
    result = export_quietly(small_checkpoint, tmp_path / "b", layout=layout)
    twin = onnx.load(str(tmp_path / "b" / "model_fp16.onnx"))
    ios = [v.type.tensor_type.elem_type for v in list(twin.graph.input) + list(twin.graph.output)]
    assert TensorProto.FLOAT16 not in ios
    nodes = list(twin.graph.node)
    inits = {t.name: t.data_type for t in twin.graph.initializer}
    convs = [n for n in nodes if n.op_type == "Conv"]
    assert inits[convs[0].input[1]] == TensorProto.FLOAT  # the first conv stays fp32
    assert all(inits[c.input[1]] == TensorProto.FLOAT16 for c in convs[1:])
    assert [n for n in nodes if n.op_type == "Softmax"]
    if layout == "efficient_nms":  # the plugin is fed fp32 (its FP16 path is 8.2's bug)
        fed = [n for n in nodes if n.op_type == "EfficientNMS_TRT"][0].input
        producers = {o: n for n in nodes for o in n.output}
        assert all(producers[i].op_type != "Cast" or
                   [a.i for a in producers[i].attribute if a.name == "to"] == [TensorProto.FLOAT] for i in fed)
    assert result.parity.fp16 is not None and result.parity.fp16.ok, result.parity.fp16.table()
    assert result.bundle.meta.onnx_fp16_file == "model_fp16.onnx"


def test_islands_are_a_choice_and_nothing_else_changes(small_bundle):
    data = open(small_bundle[0] + "/model.onnx", "rb").read()
    all_half = onnx.load_from_string(fp16_twin(data, ()))
    inits = [t for t in all_half.graph.initializer if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)]
    assert all(t.data_type == TensorProto.FLOAT16 for t in inits)
    original = {t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(data).graph.initializer}
    for t in inits:  # the same numbers, rounded to fp16
        np.testing.assert_array_equal(numpy_helper.to_array(t), original[t.name].astype(np.float16))


def test_an_op_it_cannot_convert_is_refused(small_bundle):
    from onnx import helper
    proto = onnx.load(small_bundle[0] + "/model.onnx")
    convs = [i for i, n in enumerate(proto.graph.node) if n.op_type == "Conv"]
    node = proto.graph.node[convs[1]]
    cast = helper.make_node("Cast", [node.input[0]], ["casted"], to=TensorProto.FLOAT, name="a_cast")
    node.input[0] = "casted"
    proto.graph.node.insert(convs[1], cast)
    with pytest.raises(ExportError, match="Cast node"):
        fp16_twin(proto.SerializeToString())
