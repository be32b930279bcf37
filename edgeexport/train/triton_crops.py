"""--crop-on gpu's resize as one Triton kernel: the workers' cut-out crops, packed end to end, resized to the
network's size, flipped where drawn and scaled to [0, 1], written straight into the batch.

gpu_input.resized_crops is its reference (plain torch, the CPU's path too): the same bilinear taps (F.interpolate's,
align_corners False), the same per-crop scale computed by torch, torch.lerp's two-sided formula. That reference does
it in a dozen whole-batch passes: four gathers each writing a 315 MB float tensor through a 210 MB index at batch 256
and 320x320, three lerps reading and writing them again, then the copy into the batch, the flip, the clamp and the
division. On an H200 beside the compiled step that was the 5-7 ms a step still left (benchmarks/RESULTS.md, tenth
pass). Here every output pixel reads its 4 x 3 bytes and is written once.

Triton comes with PyTorch's CUDA wheels on Linux (torch's own requirement, used by torch.compile); without it,
decode_batch keeps the reference. TRITON_INTERPRET=1, set before this module is imported, runs the kernel on CPU
tensors with NumPy (triton/runtime/jit.py: ``jit`` returns an InterpretedFunction then): that is how the tests check
it against the reference where there is no GPU.
"""
import contextlib

import torch
import triton
import triton.language as tl

BLOCK = 1024  # output pixels per program: 4 warps, 8 a thread


@triton.jit
def _resize_crops(flat, firsts, heights, widths, scale_y, scale_x, flips, rows, out, H, W,
                  BLOCK: tl.constexpr):
    p = tl.program_id(0)
    o = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    inside = o < H * W
    y = o // W
    x = o % W
    first = tl.load(firsts + p)  # int64: the crop's first byte in ``flat``
    h = tl.load(heights + p)
    w = tl.load(widths + p)
    x = tl.where(tl.load(flips + p) != 0, W - 1 - x, x)  # a flipped output reads its mirror column
    # area_pixel_compute_source_index, align_corners False: (dest + 0.5) * in / out - 0.5, below 0 taken as 0
    sy = tl.maximum((y.to(tl.float32) + 0.5) * tl.load(scale_y + p) - 0.5, 0.0)
    sx = tl.maximum((x.to(tl.float32) + 0.5) * tl.load(scale_x + p) - 0.5, 0.0)
    y0 = sy.to(tl.int32)
    x0 = sx.to(tl.int32)
    ly = sy - y0.to(tl.float32)
    lx = sx - x0.to(tl.float32)
    y1 = tl.minimum(y0 + 1, h - 1)
    x1 = tl.minimum(x0 + 1, w - 1)
    a00 = first + ((y0 * w + x0) * 3).to(tl.int64)
    a01 = first + ((y0 * w + x1) * 3).to(tl.int64)
    a10 = first + ((y1 * w + x0) * 3).to(tl.int64)
    a11 = first + ((y1 * w + x1) * 3).to(tl.int64)
    dest = out + tl.load(rows + p) * 3 * H * W + o
    for c in tl.static_range(3):
        p00 = tl.load(flat + a00 + c, mask=inside, other=0).to(tl.float32)
        p01 = tl.load(flat + a01 + c, mask=inside, other=0).to(tl.float32)
        p10 = tl.load(flat + a10 + c, mask=inside, other=0).to(tl.float32)
        p11 = tl.load(flat + a11 + c, mask=inside, other=0).to(tl.float32)
        # torch.lerp: start + w * (end - start) below w = 0.5, end - (end - start) * (1 - w) from there
        top = tl.where(lx < 0.5, p00 + lx * (p01 - p00), p01 - (p01 - p00) * (1.0 - lx))
        bottom = tl.where(lx < 0.5, p10 + lx * (p11 - p10), p11 - (p11 - p10) * (1.0 - lx))
        v = tl.where(ly < 0.5, top + ly * (bottom - top), bottom - (bottom - top) * (1.0 - ly))
        # the reference's clamp, then CUDA's division by a scalar: a multiplication by its reciprocal
        v = tl.minimum(tl.maximum(v, 0.0), 255.0) * (1.0 / 255.0)
        tl.store(dest + c * H * W, v, mask=inside)


def resize_crops_into(out, rows, pixels, shapes, flips):
    """Into ``out`` [B, 3, H, W] float32 (contiguous), at batch positions ``rows`` [P]: the crops in ``pixels``
    (uint8 [h, w, 3] each, end to end, on out's device) of sizes ``shapes`` [P, 2] (h, w), resized bilinearly to
    (H, W), mirrored where ``flips`` [P] is true, in [0, 1]. ``rows``, ``shapes`` and ``flips`` may be on the host."""
    device = out.device
    if not len(shapes):
        return out
    assert out.dtype == torch.float32 and out.is_contiguous() and pixels.dtype == torch.uint8
    H, W = int(out.shape[2]), int(out.shape[3])
    hw = shapes.to(device, torch.int64)
    count = hw[:, 0] * hw[:, 1]
    firsts = (torch.cumsum(count, 0) - count) * 3
    # the scales as the reference computes them (torch's float32 division), not re-derived in the kernel
    scale_y = hw[:, 0].float() / H
    scale_x = hw[:, 1].float() / W
    grid = (len(hw), triton.cdiv(H * W, BLOCK))
    # Triton launches on the thread's current device; the interpreter's CPU tensors have none
    with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
        _resize_crops[grid](pixels, firsts, hw[:, 0].to(torch.int32), hw[:, 1].to(torch.int32), scale_y, scale_x,
                            flips.to(device, torch.int32), rows.to(device, torch.int64), out, H, W, BLOCK=BLOCK)
    return out
