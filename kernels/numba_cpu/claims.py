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

import platform

import numpy as np
import llvmlite.binding as llvm
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


def _register_yield() -> bool:
    """Makes the C library's ``sched_yield`` callable from compiled kernels under a name of
    ours (registered in every process before a cached kernel that calls it loads); False
    where there is none (Windows)."""
    try:
        import ctypes

        address = ctypes.cast(ctypes.CDLL(None).sched_yield, ctypes.c_void_p).value
    except (AttributeError, OSError, TypeError):
        return False
    llvm.add_symbol("fastcnn_sched_yield", address)
    return True


_YIELD = _register_yield()


@intrinsic
def _yield(typingctx):
    """Offers the core to another runnable thread (``sched_yield``); without one it returns
    at once. Nothing where the C library has no sched_yield."""
    def codegen(context, builder, signature, args):
        if _YIELD:
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.IntType(32), []), "fastcnn_sched_yield")
            builder.call(function, [])
        return context.get_dummy_value()

    return types.none(), codegen


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


WAIT_CYCLES = 1 << 19
"""How long a thread that has run out of items waits for the others: about 150-200 us,
the length of a large item. Past that it leaves, and OpenMP's barrier waits instead."""


@inline_helper
def count_out(counter):
    """Counts the calling thread out (it has claimed past the last item) in counter[1];
    returns how many have counted out, itself included. The one that gets ``threads``
    knows that every item is done."""
    return _fetch_add(counter, 1, np.int64(1)) + 1


@inline_helper
def wait_for(counter, count):
    """Waits (at most WAIT_CYCLES) until counter[1] >= ``count``. Without it the first
    thread out went to sleep in OpenMP's barrier after a few microseconds, and waking it
    once the last thread was done cost 50-100 us on this VM; with items claimed, the wait
    here is at most one item. It yields the core at each look, so that beside another busy
    process (two trainings on two cores) it hands its time over instead of spinning: a
    plain spin made each of two such trainings 9% slower. The bound keeps a thread that the
    OS has taken off its core (or an inner region run serially) from holding the others."""
    start = _cycles()
    while _fetch_add(counter, 1, np.int64(0)) < count and _cycles() - start < WAIT_CYCLES:
        _pause()
        _yield()


def new_counter() -> np.ndarray:
    """A fresh counter (2,) int64 at 0 (the next item, the threads out), for one kernel
    call (calls on several Python threads at once each need their own)."""
    return np.zeros(2, np.int64)


def claiming_threads(items: int, work: int) -> int:
    """Iterations of the claiming ``prange``: one per thread that launch() runs ``work``
    on (one below SERIAL_WORK), no more than the items."""
    return max(1, min(get_num_threads() if work >= SERIAL_WORK else 1, items))
