"""Work claimed from an atomic counter (kernels/numba_cpu/claims.py) and the kernels'
kept buffers (scratch.py): every item done once, by whichever thread, the same results
however the items were shared, and no thread left waiting for ever."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("numba")

from numba import njit, prange  # noqa: E402

from fastcnn.kernels import numba_backend  # noqa: E402
from fastcnn.kernels import scratch  # noqa: E402
from fastcnn.kernels.numba_cpu import claims  # noqa: E402


@njit(parallel=True)
def _claim_all(items, threads, counter, done, out_counts):
    for t in prange(threads):
        item = claims.claim(counter)
        while item < items:
            done[item] += 1
            item = claims.claim(counter)
        out_counts[t] = claims.count_out(counter)
        claims.wait_for(counter, threads)


@njit
def _wait(counter, count):
    claims.wait_for(counter, count)


@pytest.fixture
def all_threads():
    import numba

    before = numba_backend.get_num_threads()
    numba_backend.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    yield numba.config.NUMBA_NUM_THREADS
    numba_backend.set_num_threads(before)


@pytest.mark.parametrize("items", [0, 1, 2, 7, 1000])
def test_every_item_is_claimed_exactly_once(all_threads, items):
    threads = claims.claiming_threads(items, claims.SERIAL_WORK)
    assert 1 <= threads <= max(1, min(all_threads, items))
    counter, done = claims.new_counter(), np.zeros(items, np.int64)
    counts = np.zeros(threads, np.int64)
    _claim_all(items, threads, counter, done, counts)
    assert (done == 1).all()
    assert sorted(counts.tolist()) == list(range(1, threads + 1))  # each counted out once
    assert counter[0] == items + threads and counter[1] == threads


def test_the_serial_twin_runs_every_item_on_one_thread():
    counter, done = claims.new_counter(), np.zeros(50, np.int64)
    _claim_all.py_func(50, 1, counter, done, np.zeros(1, np.int64))
    assert (done == 1).all()


def test_small_work_claims_on_one_thread(all_threads):
    assert claims.claiming_threads(100, claims.SERIAL_WORK - 1) == 1
    assert claims.claiming_threads(1, claims.SERIAL_WORK) == 1
    assert claims.claiming_threads(100, claims.SERIAL_WORK) == min(all_threads, 100)


def test_a_wait_for_threads_that_never_come_ends_on_its_own():
    counter = claims.new_counter()
    _wait(counter, 1)  # compiled
    # the CPU time of this thread, not the wall time: on a busy machine the thread may be
    # descheduled for longer than the wait, and the wait's bound is in (wall) cycles anyway
    start = time.thread_time()
    _wait(counter, 2)  # nobody counts out: the wait gives up after WAIT_CYCLES
    assert time.thread_time() - start < 0.5
    counter[1] = 2
    _wait(counter, 2)  # already there: returns at once


def test_shared_work_gives_the_same_gradients_on_every_thread_count(all_threads):
    """The convolution's backward pass claims groups of samples: whichever thread adds a
    group, the groups are summed in order, so dweight is bit-identical."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((37, 6, 11, 11)).astype(np.float32)
    weight = rng.standard_normal((8, 6, 3, 3)).astype(np.float32)
    out = np.empty((37, 8, 11, 11), np.float32)
    cols = np.empty((37, 54, 121), np.float32)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    results = []
    for threads in (1, 2, 1, 2):
        numba_backend.set_num_threads(threads)
        numba_backend.conv2d_forward(x, weight, None, 1, 1, "relu", cols, out)
        dweight, dbias = np.empty_like(weight), np.empty(8, np.float32)
        dx, dcols = np.empty_like(x), np.empty_like(cols)
        numba_backend.conv2d_backward(dout.copy(), out, weight, cols, 1, 1, "relu", dx, dweight,
                                      dbias, dcols)
        results.append((out.copy(), dx, dweight, dbias))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_scratch_keeps_one_buffer_per_role_shape_and_thread():
    first = scratch.scratch("test role", (3, 4))
    assert scratch.scratch("test role", (3, 4)) is first
    assert scratch.scratch("test role", (3, 4), np.float64) is not first
    assert scratch.scratch("other role", (3, 4)) is not first
    assert first.flags["C_CONTIGUOUS"] and first.dtype == np.float32
    elsewhere = []
    thread = threading.Thread(target=lambda: elsewhere.append(scratch.scratch("test role", (3, 4))))
    thread.start()
    thread.join()
    assert elsewhere[0] is not first


def test_scratch_forgets_the_oldest_buffers():
    kept = [scratch.scratch("forget", (i + 1,)) for i in range(scratch.KEPT + 2)]
    assert scratch.scratch("forget", (scratch.KEPT + 2,)) is kept[-1]
    assert scratch.scratch("forget", (1,)) is not kept[0]


def test_the_wait_keeps_its_core():
    """Issue 21: a wait that yielded the core at each look (sched_yield) handed it to a
    nice-19 busy process and made a fit() epoch 2.6x as long. The wait's compiled code
    calls nothing but LLVM's own intrinsics (the time-stamp counter, pause)."""
    counter = claims.new_counter()
    counter[1] = 1
    _wait(counter, 1)
    code = next(iter(_wait.inspect_llvm().values()))
    body = next(part for part in code.split("\ndefine ")[1:]
                if "_wait" in part.split("(", 1)[0] and "cpython" not in part.split("(", 1)[0])
    calls = {line.split("@", 1)[1].split("(", 1)[0].strip('"') for line in body.splitlines()
             if "call " in line and "@" in line}
    assert calls and all(name.startswith("llvm.") for name in calls), calls
