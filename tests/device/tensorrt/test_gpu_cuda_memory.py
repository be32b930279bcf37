"""The CUDA memory backends on a real GPU (no TensorRT needed): device and pinned host allocations, copies both
ways, what the GPU reports; then the TensorRT runner's buffer handling with real device pointers (the TensorRT
double computes; its "device memory" is the GPU's, reached through the same backend). Skipped without a GPU;
the same logic runs on the CPU against FakeCuda in test_build_engine.py.

On a GPU machine without the project's host stack, point EDGEEXPORT_TEST_BUNDLE at a bundle exported elsewhere.
"""
import argparse
import os
import shutil

import numpy as np
import pytest

from edgeexport.device.errors import BackendUnavailableError

pytestmark = pytest.mark.gpu


def _backends():
    from edgeexport.device.tensorrt.cuda_memory import CudaPythonMemory, PyCudaMemory
    out = []
    for cls in (PyCudaMemory, CudaPythonMemory):
        try:
            out.append(cls())
        except (ImportError, BackendUnavailableError):
            pass
    if not out:
        pytest.skip("no CUDA backend can start here (pycuda or cuda-python, and a GPU)")
    return out


@pytest.fixture(scope="module")
def backends():
    made = _backends()
    yield made
    for cuda in made:
        cuda.close()


def test_round_trips_through_device_memory(backends):
    rng = np.random.default_rng(0)
    for cuda in backends:
        for dtype, n in ((np.float32, 3 * 320 * 320), (np.int32, 100), (np.float16, 7), (np.uint8, 1)):
            data = rng.standard_normal(n).astype(dtype) if dtype in (np.float32, np.float16) else \
                rng.integers(-50, 50, n).astype(dtype)
            host = cuda.pinned_empty(n, dtype)
            host[:] = data
            ptr, owner = cuda.device_alloc(host.nbytes)
            cuda.htod(ptr, host)
            back = cuda.pinned_empty(n, dtype)
            back[:] = 0
            cuda.dtoh(back, ptr)
            cuda.synchronize()
            assert back.dtype == np.dtype(dtype) and np.array_equal(back, data), (cuda.name, dtype)
            cuda.free(owner)


def test_the_gpu_describes_itself(backends):
    for cuda in backends:
        info = cuda.device_info()
        major, minor = info["compute_capability"].split(".")
        assert info["name"] and int(major) >= 5 and minor.isdigit()
        assert info["regs_per_block"] in (32768, 65536) and 0 < info["free_bytes"] <= info["total_bytes"]


def test_the_runner_on_real_device_memory(backends, small_checkpoint, tmp_path):
    from edgeexport.device.bundle import Bundle
    from edgeexport.device.check.parity import check_bundle
    from edgeexport.device.tensorrt import api
    from edgeexport.device.tensorrt import build_engine as be
    from edgeexport.device.tensorrt.runner import TensorRTRunner

    from .trt_double import BackendMemory, make_tensorrt
    source = os.environ.get("EDGEEXPORT_TEST_BUNDLE")
    for cuda in backends:
        pinned_before = set(getattr(cuda, "_pinned", ()))  # what the other tests left in the shared backend
        bundle = str(tmp_path / cuda.name)
        if source:
            shutil.copytree(source, bundle)
        else:
            from ...conftest import export_quietly
            export_quietly(small_checkpoint, bundle, dynamic_batch=True, batch_size=4)
        api._PROCESS.update(logger=None, plugins=None)
        trt = make_tensorrt("10", "desktop", cuda=BackendMemory(cuda))
        args = argparse.Namespace(target=bundle, precision="fp32", batch=4, workspace=256, timing_cache=None,
                                  dla_core=None, gpu_id=0, calib_images=None, calib_batches=1, force=True,
                                  verbose=False)
        be.main(args, trt=trt, cuda=_ReportsDoubleGpu(cuda))
        b = Bundle(bundle)
        with TensorRTRunner(b.configured_engine_path(), trt=trt, cuda=_ReportsDoubleGpu(cuda), meta=b.meta) as runner:
            report = check_bundle(b, runner, "fp32")
            assert report.ok and report.matched > 0, report.table()
            x = b.fixtures.inputs[:3]  # a batch of 3 into buffers sized for 4: partial copies stay exact
            out = runner.infer({"input": x})
            assert out["boxes"].shape[0] == 3
        if cuda.name == "cuda-python":  # the runner freed every pinned buffer it took from a backend it was given
            assert set(cuda._pinned) == pinned_before
        # INT8: the calibrator stages each batch in pinned memory and copies it to the GPU (pycuda takes nothing
        # else), then frees it
        from PIL import Image
        images = tmp_path / (cuda.name + "-calib")
        images.mkdir()
        rng = np.random.default_rng(0)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(str(images / "{}.png".format(i)))
        api._PROCESS.update(logger=None, plugins=None)
        args.precision, args.calib_images = "int8", str(images)
        be.main(args, trt=trt, cuda=_ReportsDoubleGpu(cuda))
        assert ("calibrated", 1, False) in trt.calls and os.path.isfile(os.path.join(bundle, "calibration.cache"))
        if cuda.name == "cuda-python":
            assert set(cuda._pinned) == pinned_before


def test_a_gpu_the_machine_lacks_is_one_error_and_close_releases_everything():
    from edgeexport.device.errors import UsageError
    from edgeexport.device.tensorrt.cuda_memory import CudaPythonMemory, PyCudaMemory
    checked = []
    for cls in (PyCudaMemory, CudaPythonMemory):
        try:
            cuda = cls()
        except (ImportError, BackendUnavailableError):
            continue
        checked.append(cls)
        count = (cuda.cuda.Device.count() if cls is PyCudaMemory else
                 cuda._call(cuda.rt.cudaGetDeviceCount(), "cudaGetDeviceCount"))
        for _ in range(3):  # pinned memory taken and given back again and again
            host = cuda.pinned_empty(1 << 20, np.float32)
            host[:] = 1
            cuda.pinned_free(host)
        cuda.close()
        with pytest.raises(UsageError, match="--gpu-id {} asked for".format(count)):
            cls(gpu_id=count)
    if not checked:
        pytest.skip("no CUDA backend can start here (pycuda or cuda-python, and a GPU)")


class _ReportsDoubleGpu(object):
    """A real CUDA backend that names the GPU as the double's engines are bound to ("desktop"), so that the
    double's deserialise accepts what it built; memory and copies are the real backend's."""

    def __init__(self, backend):
        self.backend = backend
        self.stream_handle = backend.stream_handle

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def device_info(self):
        info = dict(self.backend.device_info())
        from .trt_double import GPUS
        info["name"] = GPUS["desktop"]["name"]
        return info
