"""TensorRT on the device: the version adapter (``api``), CUDA memory (``cuda_memory``) and INT8 calibration
(``calibrator``). Device-side (Python 3.6; numpy, tensorrt, pycuda or cuda-python)."""
