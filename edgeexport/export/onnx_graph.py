"""The deploy model as ONNX: export, check, simplify, pre-flight against TensorRT's parser, metadata.

``export_onnx(deploy_model, meta)`` -> ``OnnxGraph``: the bytes of model.onnx, and (efficient_nms layout) the graph
up to the plugin node, which is what ONNX Runtime can run. Host-side (torch, onnx, onnxsim).
"""
import hashlib
import io
import json
import logging
import warnings

from ..device.errors import ExportError
from ..device.meta import NMS_NODE_NAME
from .fp16 import fp16_twin
from .trt_preflight import check_graph_ops

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


def append_efficient_nms(model_proto, num_classes, score_threshold, iou_threshold, max_output_boxes):
    """Feed the graph's ``boxes`` [B,N,4] and ``scores`` [B,N,K] into TensorRT's EfficientNMS_TRT plugin node.

    The boxes are already decoded (the plugin's fused decoder has no box-coder variances) and the scores are
    softmax probabilities without background (so background_class=-1, score_activation=0). Only attributes that
    TensorRT 8.2's plugin knows are set. The result cannot run in ONNX Runtime; host parity is checked on the
    graph up to the node's inputs.
    """
    from onnx import TensorProto, helper
    graph = model_proto.graph
    dims = [d.dim_value or d.dim_param for d in graph.output[0].type.tensor_type.shape.dim]
    batch = dims[0]
    node = helper.make_node(
        "EfficientNMS_TRT", ["boxes", "scores"],
        ["num_detections", "detection_boxes", "detection_scores", "detection_classes"], name=NMS_NODE_NAME,
        domain="TRT", plugin_version="1", background_class=-1, max_output_boxes=int(max_output_boxes),
        score_threshold=float(score_threshold), iou_threshold=float(iou_threshold), score_activation=0,
        box_coding=0)
    m = int(max_output_boxes)
    new_outputs = [helper.make_tensor_value_info("num_detections", TensorProto.INT32, [batch, 1]),
                   helper.make_tensor_value_info("detection_boxes", TensorProto.FLOAT, [batch, m, 4]),
                   helper.make_tensor_value_info("detection_scores", TensorProto.FLOAT, [batch, m]),
                   helper.make_tensor_value_info("detection_classes", TensorProto.INT32, [batch, m])]
    graph.value_info.extend(list(graph.output))
    del graph.output[:]
    graph.output.extend(new_outputs)
    graph.node.append(node)
    model_proto.opset_import.append(helper.make_opsetid("TRT", 1))
    return model_proto


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


class OnnxGraph(object):
    """The exported graph: ``data`` (model.onnx's bytes), ``sha256`` of them, ``host_data`` (what ONNX Runtime
    runs: the same bytes, or the graph before the EfficientNMS_TRT node), ``fp16_data`` and ``host_fp16_data``
    (their FP16 twins), ``simplified`` (onnxsim succeeded)."""

    def __init__(self, data, host_data, simplified, fp16_data=None, host_fp16_data=None):
        self.data, self.host_data, self.simplified = data, host_data, simplified
        self.fp16_data, self.host_fp16_data = fp16_data, host_fp16_data
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.fp16_sha256 = hashlib.sha256(fp16_data).hexdigest() if fp16_data else ""
        self.int8_data = self.host_int8_data = self.int8_record = None
        self.int8_sha256 = ""

    def add_int8(self, data, host_data, record):
        """The Q/DQ twin (export --precision int8 --calib-data): what TensorRT builds an INT8 engine from, what ONNX
        Runtime runs of it, and how it was calibrated."""
        self.int8_data, self.host_int8_data, self.int8_record = data, host_data, record
        self.int8_sha256 = hashlib.sha256(data).hexdigest()

    @property
    def has_plugin(self):
        return self.host_data is not self.data


def graph_contract(meta):
    """model.json as a graph carries it: without the hashes (which are the hashes of the graphs' bytes)."""
    contract = meta.to_dict()
    contract["deploy"]["onnx_sha256"] = ""
    return contract


def int8_twin(graph, meta, settings, trt_version="8.2", echo=print, qat=None):
    """Add the Q/DQ twin to ``graph`` (OnnxGraph): the graph ONNX Runtime runs, explicitly quantized on the ranges
    calibrated on ``settings`` (export.quantize.Int8Settings), or on those a QAT checkpoint carries (``qat``: (the
    model, its record)), with the EfficientNMS_TRT node appended again for that layout."""
    import copy
    from .quantize import CalibrationImages, make_qdq_graph, qat_qdq_graph
    host_sha = hashlib.sha256(graph.host_data).hexdigest()
    if qat is not None:
        host_proto, record = qat_qdq_graph(graph.host_data, host_sha, meta, qat[0], qat[1], echo)
    else:
        images = CalibrationImages(settings.dataset, meta, settings.max_images, settings.seed)
        host_proto, record = make_qdq_graph(graph.host_data, host_sha, meta, images, settings.method, settings.cache,
                                            settings.keep_first_conv, echo)
    host_data = host_proto.SerializeToString()
    proto = copy.deepcopy(host_proto)
    if meta.layout == "efficient_nms":
        s = meta.settings
        proto = append_efficient_nms(proto, meta.model.num_classes, s.pre_cluster_threshold, s.nms_iou_threshold,
                                     meta.max_output_boxes)
    data = finalize_onnx(proto, {"edgeexport.model_json": graph_contract(meta)}, meta.opset, trt_version)
    graph.add_int8(data, data if meta.layout != "efficient_nms" else host_data, record)
    return graph


def export_onnx(deploy_model, meta, simplify_graph=True, trt_version="8.2"):
    """``meta`` (BundleMeta) decides batch, dynamic batch, opset, layout and the NMS settings; returns OnnxGraph.
    ``meta.model_json`` goes into metadata_props without the hash (which is the hash of these bytes)."""
    h, w = meta.model.input_size
    proto = export_onnx_bytes(deploy_model, [meta.batch_size, 3, h, w], deploy_model.output_names, meta.opset,
                              meta.dynamic_batch)
    simplified = False
    if simplify_graph:
        proto, simplified = simplify(proto)
    host_data = None
    if meta.layout == "efficient_nms":
        # ONNX Runtime cannot run a TensorRT plugin: the host checks the graph up to the plugin's inputs.
        host_data = proto.SerializeToString()
        s = meta.settings
        proto = append_efficient_nms(proto, meta.model.num_classes, s.pre_cluster_threshold, s.nms_iou_threshold,
                                     meta.max_output_boxes)
    data = finalize_onnx(proto, {"edgeexport.model_json": graph_contract(meta)}, meta.opset, trt_version)
    fp16 = fp16_twin(data)
    host_fp16 = fp16 if host_data is None else fp16_twin(host_data)
    return OnnxGraph(data, data if host_data is None else host_data, simplified, fp16, host_fp16)
