"""Buffers the compiled CPU backends keep between calls (partial sums), instead of
allocating them in each call of a parallel kernel.

A 1.2 MB ``np.empty`` at the top of numba's conv2 backward kernel (pytorch_cnn, batch
64) cost 70-100 us before any thread started (most likely the allocator handing the
pages back to the OS after each call, so that every call faults them in again; not
traced further). Kept here, the kernel's threads start 20 us after the call. Buffers are
per Python thread (two threads calling kernels at once never share one) and per shape,
the most recent few only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

KEPT = 32
"""Buffers kept per Python thread: enough for every layer of the zoo's models (each
convolution keeps up to six: partial sums, each thread's columns (one buffer for both
directions) and column gradients, and Winograd's scratch in each direction)."""

_local = threading.local()


def scratch(role: str, shape: tuple, dtype=np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype`` for ``role``, the
    same one on the next call with the same arguments from this Python thread."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = OrderedDict()
    key = (role, tuple(shape), np.dtype(dtype))
    buffer = buffers.get(key)
    if buffer is None:
        buffer = buffers[key] = np.empty(shape, dtype)
        while len(buffers) > KEPT:
            buffers.popitem(last=False)
    else:
        buffers.move_to_end(key)
    return buffer
