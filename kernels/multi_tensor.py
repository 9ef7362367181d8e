"""Tables for the multi-tensor optimizer steps (contract.MULTI_TENSOR) of the compiled CPU
backends: every parameter's arrays by address, and every parameter cut into chunks that
the threads claim.

One compiled kernel then serves any number of parameters (numba would compile a tuple of
arrays once per length; Cython cannot take a list of buffers without the GIL). The
caller keeps the arrays alive for the call.
"""

from __future__ import annotations

import numpy as np

CHUNK = 1 << 14
"""Elements per claimed piece of a parameter (64 KB of each float32 array)."""

_CHUNK_TABLES: dict = {}


def tables(*lists) -> tuple[np.ndarray, np.ndarray, int]:
    """(table (T, 1 + len(lists)) int64: each row the size, then the address of each list's
    array; chunks (C, 3) int64: row, first, last element; elements in all) for parallel
    lists of C-contiguous arrays of one size pairwise. Chunk tables are kept per list of
    sizes, which a model keeps from step to step."""
    sizes = tuple(array.size for array in lists[0])
    table = np.empty((len(sizes), 1 + len(lists)), np.int64)
    table[:, 0] = sizes
    for column, arrays in enumerate(lists, start=1):
        table[:, column] = [array.__array_interface__["data"][0] for array in arrays]
    chunks = _CHUNK_TABLES.get(sizes)
    if chunks is None:
        chunks = np.array([(row, lo, min(size, lo + CHUNK)) for row, size in enumerate(sizes)
                           for lo in range(0, size, CHUNK)], np.int64).reshape(-1, 3)
        _CHUNK_TABLES[sizes] = chunks
    return table, chunks, sum(sizes)


def all_float32(*lists) -> bool:
    """True when every array of every list is float32 (the kernels' one dtype)."""
    return all(array.dtype == np.float32 for arrays in lists for array in arrays)


def one_by_one(update, lists, *scalars) -> None:
    """``update(*arrays, *scalars)`` for each parameter's arrays: the one-parameter
    operation, where the arrays are not all float32 or the backend has no multi-tensor
    step (fastcnn.functional)."""
    for arrays in zip(*lists):
        update(*arrays, *scalars)
