"""The trainer's input stream: batches prepared ahead of the step by a thread of their own (the CUDA path's
machinery, run here on plain items)."""
import threading
import time

import pytest

from edgeexport.device.errors import DatasetError
from edgeexport.train.train_input import produced_ahead


def test_items_arrive_in_order_from_another_thread():
    seen = []

    def make():
        for i in range(50):
            seen.append(threading.current_thread().name)
            yield i
    assert list(produced_ahead(make, 2)) == list(range(50))
    assert set(seen) == {"edgeexport-ahead"}


def test_the_producer_runs_at_most_depth_items_ahead():
    made = []

    def make():
        for i in range(100):
            made.append(i)
            yield i
    it = produced_ahead(make, 3)
    assert next(it) == 0
    time.sleep(0.5)
    # one handed over, three waiting in the queue, one made and waiting for room
    assert len(made) <= 1 + 3 + 1, made
    it.close()


def test_an_error_in_the_thread_is_raised_in_the_callers_after_the_items_before_it():
    def make():
        yield 1
        raise DatasetError("cannot read image x.jpg")
    it = produced_ahead(make, 2)
    assert next(it) == 1
    with pytest.raises(DatasetError, match="x.jpg"):
        next(it)


def test_stopping_early_stops_the_thread():
    def make():
        i = 0
        while True:
            yield i
            i += 1
    before = threading.active_count()
    it = produced_ahead(make, 2)
    assert [next(it) for _ in range(5)] == list(range(5))
    it.close()
    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before


def test_a_producer_still_running_at_exit_is_stopped_and_joined():
    from edgeexport.train import train_input

    def make():
        while True:
            yield 0
    before = set(train_input._PRODUCERS)
    it = produced_ahead(make, 1)
    next(it)
    mine = set(train_input._PRODUCERS) - before
    assert len(mine) == 1
    train_input._stop_producers()
    assert not any(t.is_alive() for t in mine) and not mine & set(train_input._PRODUCERS)
    it.close()

