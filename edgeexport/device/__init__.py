"""The device side of edgeexport: everything that runs on the Jetson (or any TensorRT machine).

The bundle ships this package as is, with the top-level ``edgeexport/*.py`` front doors
(``python3 -m edgeexport.build_engine``, ``edgeexport.parity``): it must run on Python 3.6 (JetPack 4.6) with
numpy and TensorRT (+ pycuda), and import neither torch nor onnx. The host stages (``edgeexport.train``,
``edgeexport.export``, ``edgeexport.emulate``) build on it; it never imports them. Its C++ part, the nvinfer bbox
parser, lies in ``parser/``.
"""
