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


def test_decode_batch_uses_the_kernel_only_on_cuda(monkeypatch):
    """On the CPU crops_into keeps the reference (Triton's compiled kernels need a GPU); USE_TRITON False keeps it
    on CUDA too (the benchmark's switch)."""
    from edgeexport.train import gpu_input
    assert gpu_input.triton_crops() is not None
    called = []
    monkeypatch.setattr(gpu_input, "resized_crops", lambda *a: called.append(a) or torch.zeros((1, 3, 4, 4)))
    out = torch.full((2, 3, 4, 4), -1.0)
    gpu_input.crops_into(out, torch.tensor([1]), torch.zeros(6, dtype=torch.uint8), torch.tensor([[1, 2]]),
                         torch.tensor([True]))
    assert len(called) == 1 and bool((out[1] == 0).all()) and bool((out[0] == -1).all())
    monkeypatch.setattr(gpu_input, "USE_TRITON", False)
    assert gpu_input.triton_crops() is None


@pytest.mark.gpu
def test_the_compiled_kernel_equals_its_reference_on_the_gpu_at_batch_256():
    """256 crops of 1x1 to 360x480 (make_voc's photos) to 320x320, on CUDA: the compiled kernel against the reference
    run there too, and through decode_batch's crops_into."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
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
    ref = finished(resized_crops(flat, shapes, size, device), flips.to(device))
    assert float((out[rows.to(device)] - ref).abs().max()) * 255 <= 1e-2  # FMA contraction: a few ulps at 255
