"""Which ONNX operators TensorRT's ONNX parser accepts, per TensorRT version: a pre-flight check on the host.

Data from onnx-tensorrt's ``docs/operators.md`` ("Operator Support Matrix"), the operators marked ``Y``, on the
branch of each release: 8.2-GA ("TensorRT 8.2 supports operators up to Opset 13"; no Xor, no HardSwish: its
builtin_op_importers.cpp has no importer for either) and 8.4-GA ("up to Opset 17"; adds HardSwish, RandomNormal,
RandomNormalLike, Reciprocal, Shrink and Xor). torch writes HardSwish as HardSigmoid + Mul at opset <= 13.
Device-side safe (Python 3.6), though it is used on the host.
"""
from ..device.errors import ExportError

# onnx-tensorrt branch 8.2-GA, docs/operators.md: every row marked Y
_ONNX_TRT_8_2_GA = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu Clip Concat
Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal
Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool
Greater GreaterOrEqual GRU HardSigmoid Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu Less LessOrEqual
Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean Min Mul Neg NonMaxSuppression Not Or Pad
ParametricSoftplus Pow PRelu QuantizeLinear RandomUniform RandomUniformLike Range ReduceL1 ReduceL2 ReduceLogSum
ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
ReverseSequence RNN Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Sigmoid Sign Sin Sinh Size Slice
Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose
Unsqueeze Upsample Where
""".split())
# onnx-tensorrt branch 8.4-GA, docs/operators.md: the 8.2-GA rows plus these, now marked Y
_ONNX_TRT_8_4_GA = _ONNX_TRT_8_2_GA | frozenset(
    ["HardSwish", "RandomNormal", "RandomNormalLike", "Reciprocal", "Shrink", "Xor"])

# TensorRT's own plugins that its ONNX parser maps from custom-domain nodes (registered by initLibNvInferPlugins).
_TRT_PLUGINS = frozenset(["EfficientNMS_TRT"])

TABLES = {
    "8.2": {"max_opset": 13, "ops": _ONNX_TRT_8_2_GA},
    "8.4": {"max_opset": 17, "ops": _ONNX_TRT_8_4_GA},
}
# The deploy graph is checked against onnx-tensorrt's importer tables at 13 (8.2-GA) and 17 (8.4-GA) and exported
# and tested at those opsets only; below 13 torch writes other operator forms (Squeeze, Unsqueeze, Split, ReduceSum
# take their axes as attributes before opset 13), which nothing here has checked.
MIN_OPSET = 13
MAX_OPSET = max(t["max_opset"] for t in TABLES.values())


def check_graph_ops(op_types, opset, trt_version="8.2"):
    """Raise ExportError listing every operator (and the opset) the target parser would reject.

    ``op_types``: iterable of ``(domain, op_type)`` of every node, subgraphs included.
    """
    if trt_version not in TABLES:
        raise ExportError("no operator table for TensorRT {}: expected one of {}, or skip the check with "
                          "--trt-version none".format(trt_version, sorted(TABLES)))
    table = TABLES[trt_version]
    problems = []
    if int(opset) < MIN_OPSET:
        problems.append("opset {} (the deploy graph is exported and checked at opsets {} to {}; TensorRT {} parses "
                        "up to {}: export with --opset {})".format(opset, MIN_OPSET, MAX_OPSET, trt_version,
                                                                   table["max_opset"], MIN_OPSET))
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
