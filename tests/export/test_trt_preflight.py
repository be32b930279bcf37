import os

import onnx
import pytest

from edgeexport.device.errors import ExportError
from edgeexport.export.onnx_graph import op_types
from edgeexport.export.trt_preflight import check_graph_ops


def test_hardswish_and_high_opset_rejected_with_every_problem_listed():
    with pytest.raises(ExportError) as e:
        check_graph_ops({("", "Conv"), ("", "HardSwish"), ("", "NonZero")}, 14, "8.2")
    msg = str(e.value)
    assert "HardSwish" in msg and "NonZero" in msg and "opset 14" in msg


def test_plugins_and_supported_ops_pass():
    check_graph_ops({("", "Conv"), ("", "HardSigmoid"), ("", "Mul"), ("", "Softmax"), ("", "EfficientNMS_TRT")},
                    13, "8.2")
    with pytest.raises(ExportError, match="no operator table"):
        check_graph_ops({("", "Conv")}, 13, "7.1")


def test_exported_graph_has_no_hardswish_and_opset_13(small_bundle):
    path, _ = small_bundle
    model = onnx.load(os.path.join(path, "model.onnx"))
    ops = {op for _, op in op_types(model)}
    assert "HardSwish" not in ops and "HardSigmoid" in ops
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 13
    check_graph_ops(op_types(model), 13, "8.2")


def test_each_table_is_its_releases_support_matrix():
    """onnx-tensorrt 8.2-GA has no Xor importer and reads up to opset 13; 8.4-GA adds Xor, HardSwish and the rest
    of its matrix's new rows and reads up to opset 17 (docs/operators.md of each branch)."""
    with pytest.raises(ExportError, match="Xor"):
        check_graph_ops({("", "Conv"), ("", "Xor")}, 13, "8.2")
    check_graph_ops({("", "Conv"), ("", "Xor"), ("", "HardSwish"), ("", "Reciprocal"), ("", "Shrink")}, 17, "8.4")
    with pytest.raises(ExportError, match="opset 18"):
        check_graph_ops({("", "Conv")}, 18, "8.4")
    with pytest.raises(ExportError, match="NonZero"):
        check_graph_ops({("", "NonZero")}, 13, "8.4")
