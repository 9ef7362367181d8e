"""Which OS threads the parallel kernels run on (for fastcnn.affinity)."""

from __future__ import annotations

import sys
import threading

import numba
import numpy as np
from numba import prange, types

from .jit import CACHE, get_num_threads

_gettid = types.ExternalFunction("gettid", types.int32())
"""glibc's (and musl's) gettid(): resolved by name when the kernel is linked, so the
compiled kernel caches like the others (a ctypes pointer would pin one address)."""


@numba.njit(parallel=True, cache=CACHE)
def _record_ids(ids):
    """ids[numba thread number] = that thread's OS id; one iteration per thread."""
    for i in prange(ids.size):
        ids[numba.get_thread_id()] = _gettid()


def compute_thread_ids() -> list[int]:
    """OS thread ids (Linux TIDs) of the threads the kernels use now
    (:func:`get_num_threads`), the calling thread first; [] where they cannot be told
    (not Linux, or a thread of the team took no iteration)."""
    if not sys.platform.startswith("linux"):
        return []
    ids = np.full(get_num_threads(), -1, np.int64)
    _record_ids(ids)
    if (ids < 0).any() or ids[0] != threading.get_native_id():
        return []
    return [int(i) for i in ids]
