"""fastcnn.affinity: fit() holds the kernels' threads one to a CPU where they fill every
CPU of the process, and gives each its CPU set back afterwards."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import fastcnn
from fastcnn import affinity
from conftest import usable_backends

linux_only = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")


def test_plan_pins_only_threads_that_fill_the_cpus():
    assert affinity.plan([11, 12], {0, 1}) == {11: 0, 12: 1}
    assert affinity.plan([11, 12], {2, 5}) == {11: 2, 12: 5}     # a taskset's CPUs, in order
    assert affinity.plan([11], {0}) == {}                         # one thread: nothing to place
    assert affinity.plan([11, 12], {0, 1, 2, 3}) == {}            # CPUs to spare
    assert affinity.plan([11, 12, 13], {0, 1}) == {}              # more threads than CPUs
    assert affinity.plan([11, 11], {0, 1}) == {}                  # ids that do not add up
    assert affinity.plan([], {0, 1}) == {}


class _Module:
    def __init__(self, ids):
        self.ids = ids

    def compute_thread_ids(self):
        return self.ids


@linux_only
def test_pinned_restores_each_threads_cpus_even_after_an_error(monkeypatch):
    me = threading.get_native_id()
    before = os.sched_getaffinity(me)
    cpu = min(before)
    monkeypatch.setattr(affinity, "plan", lambda ids, allowed: {me: cpu})
    with pytest.raises(RuntimeError):
        with affinity.pinned(_Module([me])):
            assert os.sched_getaffinity(me) == {cpu}
            raise RuntimeError("a failing epoch")
    assert os.sched_getaffinity(me) == before


@linux_only
def test_pinned_leaves_everything_alone_when_turned_off_or_unnamed(monkeypatch):
    me = threading.get_native_id()
    before = os.sched_getaffinity(me)
    monkeypatch.setattr(affinity, "plan", lambda ids, allowed: {me: min(before)})
    monkeypatch.setenv("FASTCNN_PIN", "0")
    with affinity.pinned(_Module([me])):
        assert os.sched_getaffinity(me) == before
    monkeypatch.delenv("FASTCNN_PIN")
    with affinity.pinned(object()):  # a backend that cannot name its threads
        assert os.sched_getaffinity(me) == before


@linux_only
def test_pinned_gives_up_quietly_on_a_thread_that_is_gone(monkeypatch):
    me = threading.get_native_id()
    before = os.sched_getaffinity(me)
    gone = 2 ** 22 + 12345  # above the default pid_max: no such thread
    monkeypatch.setattr(affinity, "plan", lambda ids, allowed: {me: min(before), gone: 0})
    with affinity.pinned(_Module([me, gone])):
        assert os.sched_getaffinity(me) == before
    assert os.sched_getaffinity(me) == before


@linux_only
@pytest.mark.skipif("numba" not in usable_backends(), reason="numba unusable here")
def test_numba_names_its_threads_and_fit_pins_them_only_while_it_runs():
    from fastcnn.kernels import numba_backend

    with fastcnn.use_backend("numba"):
        ids = numba_backend.compute_thread_ids()
        assert ids[0] == threading.get_native_id()
        assert len(ids) == numba_backend.get_num_threads() == len(set(ids))
        fills = len(ids) == len(os.sched_getaffinity(0)) > 1
        before = {tid: os.sched_getaffinity(tid) for tid in ids}
        seen = []

        class Spy(fastcnn.Callback):
            def on_batch_end(self, batch, logs=None):
                seen.append({tid: os.sched_getaffinity(tid) for tid in ids})

        model = fastcnn.Sequential([fastcnn.Conv2D(8, 3, activation="relu"), fastcnn.Flatten(),
                                    fastcnn.Dense(10)], input_shape=(1, 8, 8))
        model.compile(optimizer="sgd", loss="cross_entropy")
        rng = np.random.default_rng(0)
        model.fit(rng.random((64, 1, 8, 8), dtype=np.float32), rng.integers(0, 10, 64),
                  batch_size=32, verbose=0, callbacks=[Spy()])
    expected = {tid: {cpu} for tid, cpu in zip(ids, sorted(os.sched_getaffinity(0)))} \
        if fills else before
    assert seen and all(during == expected for during in seen)
    assert {tid: os.sched_getaffinity(tid) for tid in ids} == before
