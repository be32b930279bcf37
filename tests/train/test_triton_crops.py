"""triton_crops' kernel against its reference (gpu_input.resized_crops, then the flip and the scaling): on the CPU
through Triton's interpreter (TRITON_INTERPRET=1, in a process of its own: the variable is read when the kernel is
defined), and on a GPU compiled, at the trainer's batch size."""
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("triton", reason="Triton comes with torch's Linux wheels; without it the reference runs alone")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# crops of any size: one pixel, thin strips, smaller and larger than the output, the output's own size; each cut
# out of a larger image (a worker's view), some flipped, scattered over a batch with rows the kernel must not touch
CHECK = r"""
import sys
import torch
from edgeexport.train.gpu_input import finished, packed, resized_crops
from edgeexport.train.triton_crops import resize_crops_into
g = torch.Generator().manual_seed(0)
sizes = [(1, 1), (5, 9), (37, 50), (100, 33), (2, 40), (24, 32), (61, 1)]
views = []
for h, w in sizes:
    image = torch.randint(0, 256, (h + 3, w + 5, 3), dtype=torch.uint8, generator=g)
    views.append(image[1:1 + h, 2:2 + w])
flat, shapes = packed(views), torch.tensor(sizes)
flips = torch.tensor([False, True, True, False, True, False, True])
rows = torch.tensor([6, 0, 3, 2, 7, 4, 8])
size = (24, 32)
out = torch.full((9, 3) + size, -1.0)
assert resize_crops_into(out, rows, flat, shapes, flips) is out
ref = finished(resized_crops(flat, shapes, size, torch.device("cpu")), flips)
print(float((out[rows] - ref).abs().max()) * 255, int((out[[1, 5]] != -1).sum()))
"""


def test_the_kernel_equals_its_reference_in_tritons_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", CHECK], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=300)
    assert r.returncode == 0, r.stdout
    levels, touched = r.stdout.split()[-2:]
    assert float(levels) <= 1e-3  # in 8-bit levels: float rounding only
    assert int(touched) == 0


def test_the_kernel_is_used_on_cuda_only_and_the_reference_takes_over_where_it_cannot_run(monkeypatch, caplog):
    """triton_crops(device): the kernel's module for CUDA, None for the CPU or with USE_TRITON False (the
    benchmark's switch); a kernel that fails (no C compiler for Triton's launcher) leaves the work to the
    reference, with one warning naming the cause, and the next batches go straight to the reference; running out
    of GPU memory is not Triton's to hide."""
    from edgeexport.train import gpu_input
    monkeypatch.setattr(gpu_input, "USE_TRITON", True)
    assert gpu_input.triton_crops(torch.device("cuda")) is not None
    assert gpu_input.triton_crops(torch.device("cpu")) is None

    class Failing:
        calls = 0
        error = RuntimeError("Failed to find C compiler. Please specify via CC environment variable.")

        def resize_crops_into(self, *args):
            Failing.calls += 1
            raise self.error
    kernel = Failing()
    monkeypatch.setattr(gpu_input, "triton_crops", lambda device: kernel if gpu_input.USE_TRITON else None)
    pixels = torch.arange(2 * 3 * 3, dtype=torch.uint8) * 9
    shapes, flips, rows = torch.tensor([[2, 3]]), torch.tensor([True]), torch.tensor([1])
    expected = gpu_input.finished(gpu_input.resized_crops(pixels, shapes, (4, 4), torch.device("cpu")), flips)
    for _ in range(2):
        out = torch.full((2, 3, 4, 4), -1.0)
        with caplog.at_level("WARNING"):
            gpu_input.crops_into(out, rows, pixels, shapes, flips)
        assert torch.equal(out[1:], expected) and bool((out[0] == -1).all())
    assert Failing.calls == 1 and not gpu_input.USE_TRITON
    warned = [r.getMessage() for r in caplog.records if "Triton" in r.getMessage()]
    assert len(warned) == 1 and "Failed to find C compiler" in warned[0] and "reference" in warned[0]
    monkeypatch.setattr(gpu_input, "USE_TRITON", True)
    kernel.error = torch.cuda.OutOfMemoryError("CUDA out of memory")
    with pytest.raises(torch.cuda.OutOfMemoryError):
        gpu_input.crops_into(torch.zeros((2, 3, 4, 4)), rows, pixels, shapes, flips)


@pytest.mark.gpu
def test_the_compiled_kernel_equals_its_reference_on_the_gpu_at_batch_256():
    """256 crops of 1x1 to 360x480 (make_voc's photos) to 320x320, on CUDA: the compiled kernel against the reference
    run there too, and through decode_batch's crops_into."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from edgeexport.train import gpu_input
    from edgeexport.train.gpu_input import crops_into, finished, packed, resized_crops
    g = torch.Generator().manual_seed(1)
    sizes = [(1, 1), (360, 480), (320, 320), (3, 479)] + [
        (int(h), int(w)) for h, w in zip(torch.randint(1, 361, (252,), generator=g),
                                         torch.randint(1, 481, (252,), generator=g))]
    views = [torch.randint(0, 256, (h, w, 3), dtype=torch.uint8, generator=g) for h, w in sizes]
    flat, shapes = packed(views), torch.tensor(sizes)
    flips = torch.rand(256, generator=g) < 0.5
    rows = torch.randperm(256, generator=g)
    device, size = torch.device("cuda"), (320, 320)
    out = torch.full((256, 3) + size, -1.0, device=device)
    crops_into(out, rows, flat, shapes, flips)
    assert gpu_input.USE_TRITON, "the kernel fell back to the reference (see the warning)"
    ref = finished(resized_crops(flat, shapes, size, device), flips.to(device))
    assert float((out[rows.to(device)] - ref).abs().max()) * 255 <= 1e-2  # FMA contraction: a few ulps at 255
