"""The trainer's input stream: batches prepared ahead of the step by a thread of their own (the CUDA path's
machinery, run here on plain items); and what the trainer says to try when its input sets the pace."""
import threading
import time

import pytest

from edgeexport.device.errors import DatasetError
from edgeexport.train.train_input import ProducedAhead


def test_items_arrive_in_order_from_another_thread():
    seen = []

    def make():
        for i in range(50):
            seen.append(threading.current_thread().name)
            yield i
    assert list(ProducedAhead(make, 2)) == list(range(50))
    assert set(seen) == {"edgeexport-ahead"}


def wait_until(condition, seconds=5.0):
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.01)
    return condition()


def counting(made, n=100):
    def make():
        for i in range(n):
            made.append(i)
            yield i
    return make


def test_the_producer_runs_at_most_depth_items_ahead():
    made = []
    it = ProducedAhead(counting(made), 3)
    assert next(it) == 0
    time.sleep(0.3)
    assert len(made) == 3, made  # the one handed over and two waiting: nothing more until the caller says so
    it.close()


def test_start_next_lets_the_thread_start_one_more_item_while_the_caller_works_on_its_own():
    made = []
    it = ProducedAhead(counting(made), 2)
    assert next(it) == 0
    time.sleep(0.2)
    assert len(made) == 2
    it.start_next()
    it.start_next()  # once per item taken: the second call grants nothing
    assert wait_until(lambda: len(made) == 3)
    time.sleep(0.2)
    assert len(made) == 3, made
    assert next(it) == 1  # already granted for item 0: taking item 1 grants nothing more
    time.sleep(0.2)
    assert len(made) == 3, made
    it.close()


def test_a_caller_that_never_calls_start_next_still_gets_every_item():
    made = []
    it = ProducedAhead(counting(made, 20), 2)
    assert list(it) == list(range(20))


def test_items_pass_through_received_in_the_callers_thread():
    where = []

    def received(item):
        where.append(threading.current_thread().name)
        return item * 10
    assert list(ProducedAhead(lambda: iter(range(5)), 2, received)) == [0, 10, 20, 30, 40]
    assert set(where) == {threading.current_thread().name}


def test_off_cuda_the_stream_prepares_in_the_callers_thread_and_start_next_is_there():
    import torch
    from edgeexport.train.train_input import ahead_on_device
    it = ahead_on_device(iter([(torch.zeros(2),), (torch.ones(2),)]), lambda b: tuple(t + 1 for t in b),
                         torch.device("cpu"))
    first = next(it)
    it.start_next()
    assert first[0].tolist() == [1, 1] and next(it)[0].tolist() == [2, 2]


def test_the_time_the_caller_waits_for_each_item_is_counted():
    """A producer slower than its caller: the caller waits about the difference for each item (what the trainer's
    "input wait" and train_speed's "waited" report); a producer faster than its caller: next to nothing."""
    from edgeexport.train.train_input import input_timings

    def slow():
        for i in range(6):
            time.sleep(0.05)
            yield i
    it = ProducedAhead(slow, 2)
    assert list(it) == list(range(6))
    assert len(it.waits) == 6 and it.waited_s == pytest.approx(sum(it.waits)) and it.waited_s >= 0.2
    assert input_timings(it, skip=1)["wait_ms"] >= 30
    it = ProducedAhead(lambda: iter(range(6)), 2)
    for _ in it:
        time.sleep(0.05)  # the caller's own work: the next items are ready by then
    assert input_timings(it, skip=1)["wait_ms"] < 10


def test_off_cuda_the_wait_is_the_time_spent_making_the_item():
    import torch
    from edgeexport.train.train_input import ahead_on_device, input_timings

    def slow_copy(batch):
        time.sleep(0.03)
        return batch
    it = ahead_on_device(iter([(torch.zeros(1),)] * 3), slow_copy, torch.device("cpu"))
    assert len(list(it)) == 3 and it.waited_s >= 0.09 and input_timings(it)["wait_ms"] >= 30
    assert "prepare_ms" not in input_timings(it)  # no preparing thread: its phases are the wait itself


def test_the_cuda_path_times_receiving_and_preparing_in_its_thread(monkeypatch):
    """ahead_on_device's CUDA branch run on the CPU: torch.cuda's device, stream and event calls stood in by no-ops
    (they order GPU work, which the CPU has none of; tests/train/test_gpu_input.py runs the real ones on a GPU).
    Each batch's receive and prepare are timed in the preparing thread, the caller's wait in its own."""
    import contextlib
    import types
    import torch
    from edgeexport.train.train_input import ahead_on_device, input_timings

    class Stream(object):
        def __init__(self, *args, **kwargs):
            pass

        def wait_event(self, event):
            pass

    class Event(object):
        def record(self, stream):
            pass
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: None)
    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda self, stream: None, raising=False)

    def received():
        for _ in range(8):
            time.sleep(0.01)
            yield (torch.zeros(1),)

    def prepare(batch):
        time.sleep(0.04)
        return batch
    it = ahead_on_device(received(), prepare, types.SimpleNamespace(type="cuda", index=0))
    assert len(list(it)) == 8 and len(it.spans) == 8
    t = input_timings(it, skip=2)
    assert 5 <= t["receive_ms"] < t["prepare_ms"] and t["prepare_ms"] >= 35 and t["wait_ms"] >= 30


def test_an_error_in_the_thread_is_raised_in_the_callers_after_the_items_before_it():
    def make():
        yield 1
        raise DatasetError("cannot read image x.jpg")
    it = ProducedAhead(make, 2)
    assert next(it) == 1
    with pytest.raises(DatasetError, match="x.jpg"):
        next(it)


def test_stopping_early_stops_the_thread():
    def make():
        i = 0
        while True:
            yield i
            i += 1
    it = ProducedAhead(make, 2)
    thread = it._thread
    assert [next(it) for _ in range(5)] == list(range(5))
    it.close()
    thread.join(timeout=5)
    assert not thread.is_alive()
    with pytest.raises(StopIteration):
        next(it)


def test_dropping_the_iterator_without_close_stops_the_thread_and_closes_its_source():
    """A caller that lets go of the stream (train_speed.py's rows) must not leave its thread, and the loader the
    thread iterates, alive beside whatever runs next."""
    import gc
    closed = []

    def make():
        try:
            while True:
                yield 0
        finally:
            closed.append(True)  # a generator's finally runs when it is closed or freed: the loader's shutdown
    it = ProducedAhead(make, 2)
    thread = it._thread
    next(it)
    del it
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert wait_until(lambda: closed)


def test_a_producer_still_running_at_exit_is_stopped_and_joined():
    from edgeexport.train import train_input

    def make():
        while True:
            yield 0
    before = set(train_input._PRODUCERS)
    it = ProducedAhead(make, 1)
    next(it)
    mine = set(train_input._PRODUCERS) - before
    assert len(mine) == 1
    train_input._stop_producers()
    assert not any(t.is_alive() for t in mine) and not mine & set(train_input._PRODUCERS)
    it.close()



def advice_input(tmp_path, photo, decode="cpu", crop_on="cpu", decode_scale="full", device="cpu", files=True):
    """A TrainInput as build_train_input leaves it, over two photos of ``photo`` (w, h)."""
    from PIL import Image
    from edgeexport.train.train_input import TrainInput
    paths = []
    for k in range(2):
        paths.append(str(tmp_path / "p{}.jpg".format(k)))
        Image.new("RGB", photo).save(paths[-1])
    source = TrainInput(None, None, None)
    source.flags = {"decode": decode, "crop_on": crop_on, "decode_scale": decode_scale, "device": device}
    source.items = [(p, None, None) for p in paths] if files else None
    return source


def test_input_advice_names_what_applies_to_the_run_once_the_input_sets_the_pace(tmp_path):
    from edgeexport.train.train_input import ADVISE_FROM, input_advice
    size = (320, 320)
    big = advice_input(tmp_path, (4032, 3024))
    assert input_advice(big, ADVISE_FROM - 0.01, 1, 1, size, cores=2) is None  # the step set the pace
    line = input_advice(big, 0.6, 3, 0, size, cores=8)
    assert line == ("input wait 60% in epoch 3: the input, not the step, set the pace; to try: --workers 7 (8 CPU "
                    "cores for this process; it has 0); --decode-scale reduced (photos of 4032x3024 for an input of "
                    "320x320; held-out mAP 0.007 lower on average, twice as spread between seeds, measured)")
    # photos near the input's size: no smaller decode to offer; every core already a worker: nothing left on a CPU
    assert input_advice(advice_input(tmp_path, (480, 360)), 0.6, 1, 7, size, cores=8) is None
    on_gpu = input_advice(advice_input(tmp_path, (480, 360), device="cuda"), 0.5, 1, 7, size, cores=8)
    assert on_gpu.endswith("to try: --crop-on gpu (the GPU resizes the crops); --decode gpu (nvJPEG decodes; the "
                           "workers only read the files)")
    reduced = advice_input(tmp_path, (4032, 3024), decode_scale="reduced", crop_on="gpu", device="cuda")
    assert input_advice(reduced, 0.5, 1, 7, size, cores=8).endswith("to try: --decode gpu (nvJPEG decodes; the "
                                                                     "workers only read the files)")
    v2 = input_advice(advice_input(tmp_path, (4032, 3024), decode="cpu-v2"), 0.5, 1, 7, size, cores=8)
    assert "--decode cpu (4-6x the samples a worker" in v2 and "--decode-scale" not in v2
    rendered = advice_input(tmp_path, (480, 360), decode="cpu-v2", files=False)  # synthetic: no files to decode
    assert input_advice(rendered, 0.9, 1, 7, size, cores=8) is None
    from edgeexport.train.train_input import TrainInput
    assert input_advice(TrainInput(None, None, None), 0.9, 1, 0, size, cores=8) is None  # not build_train_input's


def test_the_trainer_prints_the_advice_once_after_its_first_epoch(tmp_path, monkeypatch, capsys):
    from edgeexport.train import cli
    real = cli.train_one_epoch

    def waits(*args, **kwargs):
        stats = real(*args, **kwargs)
        stats["input_wait_s"] = 0.5 * stats["seconds"]  # as if the step had waited half of each epoch
        return stats
    monkeypatch.setattr(cli, "train_one_epoch", waits)
    cli.cli(["--dataset", "synthetic", "--arch", "ssdlite320_mobilenet_v3_small", "--num-classes", "3",
             "--synthetic-train-size", "8", "--synthetic-val-size", "4", "--synthetic-image-size", "64", "64",
             "-b", "4", "--epochs", "3", "--workers", "0", "--threads", "1", "--eval-every", "3", "--no-progress",
             "--output-dir", str(tmp_path / "o")])
    lines = capsys.readouterr().out.splitlines()
    advice = [k for k, line in enumerate(lines) if line.startswith("input wait")]
    cores = __import__("os").cpu_count()
    if cores > 1:  # rendered images, cpu-v2: only more workers to try
        assert len(advice) == 1 and lines[advice[0] - 1].startswith("epoch   1"), lines
        assert lines[advice[0]] == ("input wait 50% in epoch 1: the input, not the step, set the pace; to try: "
                                    "--workers {} ({} CPU cores for this process; it has 0)".format(cores - 1,
                                                                                                     cores))
    else:
        assert advice == []
