"""Work shared by speed: each thread of a parallel kernel claims its next item from a
counter that every thread adds to atomically.

    counter = new_counter()                 # Python side, one per call
    for t in prange(threads):               # one iteration per thread
        item = claim(counter)
        while item < items:
            ...work on item...
            item = claim(counter)
        count_out(counter)
        wait_for(counter, threads)          # leave together (see wait_for)

numba's ``prange`` splits its iterations evenly before any thread starts, so the
region lasts as long as its slowest thread. The second core of a shared VM is often
the slow one: it wakes 15-80 us after the first, and while the host runs something on
its sibling it runs 20-35% slower (rdtsc timestamps per sample, 64 conv samples: 32 of
them took 850 us on one thread and 1,170 us on the other). Claimed items go to
whichever thread is free, so both finish together. What each item computes does not
depend on which thread runs it, so results stay the same whatever the split.
"""

from __future__ import annotations

import os
import platform

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .jit import SERIAL_WORK, get_num_threads, inline_helper


@intrinsic
def _fetch_add(typingctx, counter, index, value):
    """counter[index] += value atomically (sequentially consistent); returns the old value.
    counter: a C-contiguous 1-D int64 array."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64
            and counter.ndim == 1 and counter.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        slot = cgutils.get_item_pointer(context, builder, signature.args[0], array, [index])
        return builder.atomic_rmw("add", slot, args[2], "seq_cst")

    return types.int64(counter, types.intp, types.int64), codegen


@intrinsic
def _cycles(typingctx):
    """The CPU's time-stamp counter (cycles at a fixed rate)."""
    def codegen(context, builder, signature, args):
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(64), []), "llvm.readcyclecounter")
        return builder.call(function, [])

    return types.int64(), codegen


_SPIN_HINT = "llvm.x86.sse2.pause" if platform.machine().lower() in ("x86_64", "amd64") else None


@intrinsic
def _pause(typingctx):
    """A spin-wait hint to the CPU (x86's ``pause``; nothing elsewhere)."""
    def codegen(context, builder, signature, args):
        if _SPIN_HINT:
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), _SPIN_HINT)
            builder.call(function, [])
        return context.get_dummy_value()

    return types.none(), codegen


@inline_helper
def claim(counter):
    """The next unclaimed item: counter[0], which this call moves on by one."""
    return _fetch_add(counter, 0, np.int64(1))


WAIT_CYCLES = int(os.environ.get("FASTCNN_WAIT_CYCLES") or 1 << 19)
"""How long a thread that has run out of items waits for the others: about 150-200 us,
the length of a large item. Past that it leaves, and OpenMP's barrier waits instead.
new_counter() reads it at each call; ``FASTCNN_WAIT_CYCLES`` sets it for an A/B of
wait lengths (benchmarks/felt_ab.py)."""


@inline_helper
def count_out(counter):
    """Counts the calling thread out (it has claimed past the last item) in counter[1];
    returns how many have counted out, itself included. The one that gets ``threads``
    knows that every item is done."""
    return _fetch_add(counter, 1, np.int64(1)) + 1


@inline_helper
def wait_for(counter, count):
    """Spins (at most counter[2] cycles, WAIT_CYCLES) until counter[1] >= ``count``.

    Without a wait the first thread out went to sleep in OpenMP's barrier after a few
    microseconds (fastcnn sets GOMP_SPINCOUNT=300), and waking it once the last thread
    was done cost 50-100 us on this VM; with items claimed, the wait here is at most one
    item. It keeps the core: an earlier wait that yielded it (``sched_yield``) at each
    look handed it to any runnable process, and beside a busy loop at ``nice -n 19`` a
    whole fit() epoch took 2.6x as long (43 s against 16 s, issue 21; likely, not
    traced: Linux's EEVDF scheduler moves a yielding thread's deadline a time slice
    back at each yield, so after a few dozen looks even a nice-19 process comes first
    and keeps the core for its slice, 1-3 ms). The bound keeps a thread that the OS has
    taken off its core (or an inner region run serially) from holding the others."""
    start = _cycles()
    budget = counter[2]
    while _fetch_add(counter, 1, np.int64(0)) < count and _cycles() - start < budget:
        _pause()


def new_counter() -> np.ndarray:
    """A fresh counter (3,) int64 for one kernel call (calls on several Python threads at
    once each need their own): the next item (0), the threads out (0) and the wait's
    bound in cycles (WAIT_CYCLES)."""
    return np.array([0, 0, WAIT_CYCLES], np.int64)


def claiming_threads(items: int, work: int) -> int:
    """Iterations of the claiming ``prange``: one per thread that launch() runs ``work``
    on (one below SERIAL_WORK), no more than the items."""
    return max(1, min(get_num_threads() if work >= SERIAL_WORK else 1, items))
