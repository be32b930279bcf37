"""The host emulation of a bundle's DeepStream pipeline (host-side: numpy, OpenCV, ONNX Runtime, ctypes):
``nvinfer`` (nvinfer's preprocessing, the compiled C++ parser of edgeexport.device.deepstream.parser_library, its
clustering), ``publish`` (nvmsgconv's messages over MQTT), ``video`` (frames in, annotated H.264 mp4 out),
``make_clip`` (a test clip with ground truth), ``cli`` (``python -m edgeexport.emulate``)."""
