"""Which ONNX operators TensorRT's ONNX parser accepts, per TensorRT version: a pre-flight check on the host.

Data taken from onnx-tensorrt's ``docs/operators.md`` ("Operator Support Matrix", the revision headed
"TensorRT 8.4 supports operators up to Opset 13"; TensorRT 8.2's parser has the same opset ceiling of 13).
Only operators marked ``Y`` are listed; HardSwish is absent (torch writes HardSigmoid + Mul at opset <= 13).
Device-side safe (Python 3.6), though it is used on the host.
"""
from ..device.errors import ExportError

_OPSET13_PARSER_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu Clip Concat
Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal
Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool
Greater GreaterOrEqual GRU HardSigmoid Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu Less LessOrEqual
Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean Min Mul Neg NonMaxSuppression Not Or Pad
ParametricSoftplus Pow PRelu QuantizeLinear RandomUniform RandomUniformLike Range ReduceL1 ReduceL2 ReduceLogSum
ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
ReverseSequence RNN Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Sigmoid Sign Sin Sinh Size Slice
Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose
Unsqueeze Upsample Where Xor
""".split())

# TensorRT's own plugins that its ONNX parser maps from custom-domain nodes (registered by initLibNvInferPlugins).
_TRT_PLUGINS = frozenset(["EfficientNMS_TRT"])

TABLES = {
    "8.2": {"max_opset": 13, "ops": _OPSET13_PARSER_OPS},
    "8.4": {"max_opset": 13, "ops": _OPSET13_PARSER_OPS},
}


def check_graph_ops(op_types, opset, trt_version="8.2"):
    """Raise ExportError listing every operator (and the opset) the target parser would reject.

    ``op_types``: iterable of ``(domain, op_type)`` of every node, subgraphs included.
    """
    if trt_version not in TABLES:
        raise ExportError("no operator table for TensorRT {}: expected one of {}, or skip the check with "
                          "--trt-version none".format(trt_version, sorted(TABLES)))
    table = TABLES[trt_version]
    problems = []
    if int(opset) > table["max_opset"]:
        problems.append("opset {} (TensorRT {} parses up to {}; export with --opset {})".format(
            opset, trt_version, table["max_opset"], table["max_opset"]))
    bad = sorted({op for domain, op in op_types
                  if not ((domain in ("", "ai.onnx") and op in table["ops"]) or op in _TRT_PLUGINS)})
    if bad:
        problems.append("operators {} (not in onnx-tensorrt's support matrix for TensorRT {})".format(
            ", ".join(bad), trt_version))
    if problems:
        raise ExportError("the graph would not parse on TensorRT {}: {}".format(trt_version, "; ".join(problems)))
