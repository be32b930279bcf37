"""A thin adapter over TensorRT's Python API, chosen by feature detection (not version strings):

- 8.2 (Jetson Nano, JetPack 4.6): explicit-batch network flag, ``config.max_workspace_size``,
  ``build_serialized_network`` / ``build_engine``, the bindings API, ``execute_async_v2``;
- 8.5 ... 10.x: ``config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, n)``, named I/O tensors,
  ``context.set_input_shape``, ``set_tensor_address`` + ``execute_async_v3``. 10.x removed the bindings API,
  ``build_engine`` and ``execute_async_v2``.

Every function takes the ``tensorrt`` module as ``trt`` so the tests can pass a double of either generation.
Device-side (Python 3.6).
"""
import numpy as np

from ..errors import EngineBuildError

_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT8": np.int8, "BOOL": np.bool_,
           "INT64": np.int64, "UINT8": np.uint8}


def uses_named_tensors(engine):
    return hasattr(engine, "num_io_tensors")


def network_flags(trt):
    """1 << EXPLICIT_BATCH where the flag exists (8.x; deprecated and implied in 10.x)."""
    flag = getattr(getattr(trt, "NetworkDefinitionCreationFlag", None), "EXPLICIT_BATCH", None)
    return 0 if flag is None else 1 << int(flag)


def set_workspace(trt, config, nbytes):
    if hasattr(config, "set_memory_pool_limit") and hasattr(trt, "MemoryPoolType"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(nbytes))
    else:
        config.max_workspace_size = int(nbytes)


def has_fast(builder, precision):
    """Whether the GPU has a fast path for ``precision``; True where TensorRT no longer says (10.x)."""
    attr = {"fp16": "platform_has_fast_fp16", "int8": "platform_has_fast_int8"}.get(precision)
    return True if attr is None else bool(getattr(builder, attr, True))


def build_serialized(builder, network, config):
    """Serialized engine bytes, or None when TensorRT reports a failed build."""
    if hasattr(builder, "build_serialized_network"):
        plan = builder.build_serialized_network(network, config)
        return None if plan is None else bytes(plan)
    engine = builder.build_engine(network, config)
    return None if engine is None else bytes(engine.serialize())


def dtype_name(dt):
    return str(getattr(dt, "name", dt)).split(".")[-1].upper()


def to_numpy_dtype(dt):
    return _DTYPES.get(dtype_name(dt), np.float32)


def engine_io(trt, engine):
    """[(name, is_input, shape tuple, dtype name)] in the engine's own order."""
    out = []
    if uses_named_tensors(engine):
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            out.append((name, is_input, tuple(engine.get_tensor_shape(name)), dtype_name(engine.get_tensor_dtype(name))))
    else:
        for i in range(engine.num_bindings):
            out.append((engine.get_binding_name(i), bool(engine.binding_is_input(i)),
                        tuple(engine.get_binding_shape(i)), dtype_name(engine.get_binding_dtype(i))))
    return out


def max_input_shape(trt, engine, name):
    """The largest shape an input accepts (profile 0's max for a dynamic dim)."""
    if uses_named_tensors(engine):
        shape = tuple(engine.get_tensor_shape(name))
        if -1 in shape:
            return tuple(engine.get_tensor_profile_shape(name, 0)[2])
        return shape
    idx = engine.get_binding_index(name)
    shape = tuple(engine.get_binding_shape(idx))
    if -1 in shape:
        return tuple(engine.get_profile_shape(0, idx)[2])
    return shape


def set_input_shape(engine, context, name, shape):
    if uses_named_tensors(engine):
        context.set_input_shape(name, tuple(shape))
    else:
        context.set_binding_shape(engine.get_binding_index(name), tuple(shape))


def output_shape(engine, context, name):
    if uses_named_tensors(engine):
        return tuple(context.get_tensor_shape(name))
    return tuple(context.get_binding_shape(engine.get_binding_index(name)))


def execute(engine, context, pointers, stream_handle):
    """Run one inference; ``pointers``: {tensor name: device pointer}."""
    if hasattr(context, "execute_async_v3"):
        for name, ptr in pointers.items():
            context.set_tensor_address(name, int(ptr))
        ok = context.execute_async_v3(stream_handle)
    else:
        bindings = [int(pointers[engine.get_binding_name(i)]) for i in range(engine.num_bindings)]
        ok = context.execute_async_v2(bindings, stream_handle)
    if not ok:
        raise EngineBuildError("TensorRT reported a failed inference (execute returned false)")


def parse_onnx(trt, network, logger, onnx_bytes):
    """Parse into ``network``; on failure raise with EVERY parser error, not just the first."""
    parser = trt.OnnxParser(network, logger)
    if parser.parse(onnx_bytes):
        return parser
    errors = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)
        node = e.node() if hasattr(e, "node") else -1
        errors.append("  [{}] node {}: {}".format(i, node, e.desc() if hasattr(e, "desc") else e))
    raise EngineBuildError("TensorRT's ONNX parser rejected the model ({} error(s)):\n{}".format(
        len(errors), "\n".join(errors) or "  (no error text)"))
