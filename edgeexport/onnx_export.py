"""Write the deploy graph as ONNX: export, check, simplify, pre-flight against TensorRT's parser, metadata.

Host-side (torch, onnx, onnxsim).
"""
import hashlib
import io
import json
import logging
import warnings

from .errors import ExportError
from .fileio import atomic_write_bytes
from .trt_onnx_ops import check_graph_ops

log = logging.getLogger(__name__)


def _all_nodes(graph):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                for sub in _all_nodes(attr.g):
                    yield sub
            for g in attr.graphs:
                for sub in _all_nodes(g):
                    yield sub


def op_types(model_proto):
    """Set of (domain, op_type) over every node, subgraphs included."""
    return {(n.domain, n.op_type) for n in _all_nodes(model_proto.graph)}


def export_onnx_bytes(deploy_model, input_shape, output_names, opset=13, dynamic_batch=False):
    """torch.onnx.export (TorchScript exporter: it writes HardSwish as HardSigmoid + Mul at opset <= 13,
    which TensorRT 8.2 reads) into memory. Returns an onnx.ModelProto."""
    import onnx
    import torch
    x = torch.zeros(*input_shape)
    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {"input": {0: "batch"}}
        dynamic_axes.update({n: {0: "batch"} for n in output_names})
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        try:
            torch.onnx.export(deploy_model.eval(), (x,), buf, input_names=["input"], output_names=list(output_names),
                              opset_version=int(opset), dynamic_axes=dynamic_axes, do_constant_folding=True,
                              dynamo=False)
        except Exception as e:  # the exporter raises many types for unsupported layers
            raise ExportError("torch.onnx.export failed at opset {}: {}: {}".format(
                opset, type(e).__name__, str(e).splitlines()[0] if str(e) else ""))
    return onnx.load_from_string(buf.getvalue())


def simplify(model_proto):
    """onnxsim; on any failure warn and keep the unsimplified graph (it is still correct, only larger)."""
    try:
        import onnxsim
        simplified, ok = onnxsim.simplify(model_proto)
    except Exception as e:  # the simplifier can fail in many ways; the unsimplified graph remains valid
        log.warning("onnxsim failed (%s: %s); keeping the unsimplified graph", type(e).__name__, str(e)[:200])
        return model_proto, False
    if not ok:
        log.warning("onnxsim could not validate its result; keeping the unsimplified graph")
        return model_proto, False
    return simplified, True


def finalize_onnx(model_proto, metadata, opset, trt_version="8.2"):
    """Check, attach metadata_props, pre-flight the operators. Returns the serialised bytes."""
    import onnx
    try:
        onnx.checker.check_model(model_proto)
    except onnx.checker.ValidationError as e:
        raise ExportError("onnx.checker rejected the graph: {}".format(str(e).splitlines()[0]))
    if trt_version and trt_version != "none":
        check_graph_ops(op_types(model_proto), opset, trt_version)
    del model_proto.metadata_props[:]
    for key, value in sorted(metadata.items()):
        prop = model_proto.metadata_props.add()
        prop.key = key
        prop.value = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    model_proto.producer_name = "edgeexport"
    return model_proto.SerializeToString()


def write_onnx(path, data):
    """Atomically write the ONNX bytes; returns their sha256 (hex)."""
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()
