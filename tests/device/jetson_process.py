"""Run a device command the way a Jetson runs it: from inside an exported bundle, with only the bundle's own
edgeexport importable (the development checkout hidden), torch/onnx/onnxruntime unimportable for edgeexport's
code, and (optionally) the TensorRT double and a fake pycuda as the only TensorRT and CUDA there are."""
import os
import subprocess
import sys

FAKE_MODULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_modules")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BLOCKER = r'''
import os, sys
HOST = ("torch", "torchvision", "onnx", "onnxsim") + (() if os.environ.get("EDGEEXPORT_ALLOW_ORT") else
                                                     ("onnxruntime",))
if os.environ.get("EDGEEXPORT_BLOCK_MAP"):  # a Jetson without a mAP library (pycocotools builds from source there)
    HOST += ("faster_coco_eval", "pycocotools")
class Block(object):
    # torch, onnx and onnxruntime do not exist on the Jetson: any import of them by edgeexport's code (or by code
    # run with -c) fails here. The TensorRT double, which stands in for TensorRT's C++ core, may use them.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in HOST:
            return None
        frame = sys._getframe(1)
        while frame is not None and ("importlib" in frame.f_code.co_filename or
                                     frame.f_code.co_filename.startswith("<")):
            frame = frame.f_back
        where = frame.f_code.co_filename if frame is not None else ""
        if os.sep + "edgeexport" + os.sep not in where and not where.startswith("<"):
            return None
        raise ImportError("blocked on the device: " + name)
sys.meta_path.insert(0, Block())
'''



def hide_checkout(code):
    """Code run first in the child: the development checkout leaves sys.path, and setuptools' editable-install
    finder (a meta path finder that maps ``edgeexport`` and its direct children to the checkout, whatever
    sys.path says) leaves sys.meta_path, so that ``import edgeexport`` can only find the bundle's copy."""
    return ("import os, sys\nsys.path = [p for p in sys.path if os.path.realpath(p or '.') != {!r}]\n"
            "sys.meta_path = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith("
            "'__editable__')]\n".format(os.path.realpath(REPO)) + code)


def run_in_bundle(bundle, args, trt=None, gpu="desktop", env=None, onnxruntime=False, python=None):
    """``python -m ...`` from inside the bundle folder, with only the bundle's own edgeexport importable and
    torch/onnx blocked: the Jetson's situation. ``trt``: a generation of the TensorRT double (8.2, 8.6, 10, 11),
    importable as ``tensorrt`` with a fake ``pycuda`` on the fake GPU ``gpu``; None: no TensorRT at all.
    ``onnxruntime``: let edgeexport import ONNX Runtime (an optional runtime on a device; onnx stays blocked).
    ``python``: the interpreter (default: this one; tests/device/test_python36.py passes a Python 3.6)."""
    extra = [FAKE_MODULES] if trt else []
    code = hide_checkout(BLOCKER + "sys.path[:0] = [os.getcwd()] + {!r}\nimport runpy\nsys.argv = {!r}\n"
                         "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n".format(
                             extra, list(args)))
    run_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EDGEEXPORT_TRT_DOUBLE")}
    if trt:
        run_env.update(EDGEEXPORT_TRT_DOUBLE=trt, EDGEEXPORT_FAKE_GPU=gpu)
    run_env.pop("EDGEEXPORT_ALLOW_ORT", None)
    if onnxruntime:
        run_env["EDGEEXPORT_ALLOW_ORT"] = "1"
    run_env.update(env or {})
    return subprocess.run([python or sys.executable, "-c", code], cwd=bundle, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300, env=run_env)


