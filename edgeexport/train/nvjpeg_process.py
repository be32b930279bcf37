"""nvJPEG in a process of its own (``--decode-process``): the batch's files decoded in a second CUDA context, the
images handed back through one GPU buffer shared once.

Why a process: in the trainer's process, nvJPEG's batched decode returned only after the work already queued on
the GPU, whichever stream that work was on (benchmarks/nvjpeg_overlap.py on an H200: 256 files 102-106 ms beside a
100 ms kernel, 11 alone; benchmarks/results/h200_nvjpeg_overlap_1205c.json), so the thread preparing the next batch
waited for the step it was meant to run beside, and the compiled step was fed at 67-74 % of its speed
(benchmarks/RESULTS.md, sixth and seventh passes). A wait for "everything queued" covers one CUDA context: each
process has its own (the CUDA programming guide: contexts of different processes are isolated, and a device-wide
synchronisation waits for the calling context's work).

The buffers cross once: the files go into a CPU tensor in shared memory, the images come back in a CUDA tensor
allocated here and opened there through CUDA IPC (torch.multiprocessing sends a CUDA tensor as an IPC handle), so
a batch costs a memcpy of its bytes and two small messages. Each side finishes with the buffers before the other
touches them: the child synchronises its stream before it answers, decode_batch its own before it returns.
"""
import atexit

import torch

from ..device.errors import DatasetError, TrainingError

_LIVE = []  # the processes still running, stopped at exit


def _grown(buffer, need, device):
    """``buffer`` if it holds ``need`` bytes, else a new one with room for twice that (fewer regrowths), on
    ``device``; on the CPU in shared memory (a CUDA tensor crosses as an IPC handle of its own accord)."""
    if buffer is not None and buffer.numel() >= need:
        return buffer
    new = torch.empty(2 * need, dtype=torch.uint8, device=device)
    return new if new.is_cuda else new.share_memory_()


def _serve(conn, device):
    """The child: decodes each batch into the shared image buffer; answers ("done", shapes), ("small", bytes
    needed) or ("error", message)."""
    from .gpu_input import decode_jpegs, split_encoded
    if device.type == "cuda":
        torch.cuda.set_device(device)
    files = images_out = None
    while True:
        try:
            ask = conn.recv()
        except EOFError:  # the trainer is gone
            return
        if ask is None:
            return
        if ask[0] == "buffers":
            files, images_out = ask[1], ask[2]
            continue
        n, ends = ask[1], ask[2]
        try:
            images = decode_jpegs(split_encoded(files[:n], torch.tensor(ends, dtype=torch.int64)), device)
            need = sum(im.numel() for im in images)
            if need > images_out.numel():
                conn.send(("small", need))
                continue
            torch.cat([im.reshape(-1) for im in images], out=images_out[:need])
            if device.type == "cuda":
                torch.cuda.current_stream(device).synchronize()
            conn.send(("done", [tuple(im.shape) for im in images]))
        except Exception as e:  # by design: whatever fails here is the trainer's to report
            conn.send(("error", "{}: {}".format(type(e).__name__, e)))


class DecodingProcess(object):
    """``decoder(data, ends)`` -> the files of a collated batch (gpu_input.EncodedBatch's ``data``, ``ends``) as
    [3, H, W] uint8 images on ``device``, decoded by a child process (decode_jpegs there). One batch at a time;
    the images are views of a buffer the next call overwrites, so the caller is done with them first (decode_batch
    waits for its kernels before it returns)."""

    def __init__(self, device):
        import torch.multiprocessing as mp
        if device.type == "cuda" and device.index is None:  # the child has no current device to fall back on
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = device
        ctx = mp.get_context("spawn")  # a forked child cannot initialise CUDA
        self._conn, theirs = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(theirs, device), name="edgeexport-nvjpeg", daemon=True)
        self._proc.start()
        theirs.close()
        self._files = self._images = None
        _LIVE.append(self)

    def _send_buffers(self, files, images):
        if files is not self._files or images is not self._images:
            self._files, self._images = files, images
            self._conn.send(("buffers", files, images))

    def _ask(self, message):
        try:
            self._conn.send(message)
            return self._conn.recv()
        except (EOFError, OSError):
            raise TrainingError("the nvJPEG process stopped (exit code {}); run without --decode-process to see the "
                                "decoder's own error".format(self._proc.exitcode))

    def __call__(self, data, ends):
        files = _grown(self._files, len(data), torch.device("cpu"))
        files[:len(data)].copy_(data)
        self._send_buffers(files, _grown(self._images, 1, self.device))
        ends = ends.tolist()  # a list: a tensor would cross through a shared-memory file of its own
        while True:
            answer = self._ask(("decode", len(data), ends))
            if answer[0] == "small":
                self._send_buffers(files, _grown(self._images, answer[1], self.device))
                continue
            if answer[0] == "error":
                raise DatasetError("nvJPEG could not decode a batch: {}; decode it on the CPU (--decode cpu) to "
                                   "find the file".format(answer[1]))
            break
        out, at = [], 0
        for shape in answer[1]:
            n = shape[0] * shape[1] * shape[2]
            out.append(self._images[at:at + n].view(shape))
            at += n
        return out

    def close(self):
        if self in _LIVE:
            _LIVE.remove(self)
        if self._proc.is_alive():
            try:
                self._conn.send(None)
            except (OSError, ValueError):
                pass
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                self._proc.terminate()


@atexit.register
def _stop_all():
    for p in list(_LIVE):
        p.close()
