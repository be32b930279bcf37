"""The host emulation of a bundle's DeepStream pipeline (host-side: numpy, OpenCV, ONNX Runtime, ctypes):
``nvinfer`` (nvinfer's preprocessing, the compiled C++ parser, its clustering), ``parser_library`` (the parser .so
through ctypes), ``video`` (frames in, annotated mp4 out), ``make_clip`` (a test clip with ground truth), ``cli``
(``python -m edgeexport.emulate``)."""
