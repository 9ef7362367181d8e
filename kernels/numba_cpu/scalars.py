"""Small helpers shared by several kernels: activation codes, a stable sigmoid, and the
first-maximum-wins comparison and argmax of max pooling, softmax and the losses."""

from __future__ import annotations

import numpy as np

from .jit import inline_helper, serial_kernel

NO_ACTIVATION, RELU, SIGMOID = 0, 1, 2
_ACTIVATION_CODES = {None: NO_ACTIVATION, "relu": RELU, "sigmoid": SIGMOID}


def activation_code(activation) -> int:
    """The integer the kernels use for an entry of contract.ACTIVATIONS."""
    try:
        return _ACTIVATION_CODES[activation]
    except KeyError:
        raise ValueError(f"unknown activation {activation!r}; "
                         f"expected one of {tuple(_ACTIVATION_CODES)}") from None


@serial_kernel
def sigmoid(v):
    """1 / (1 + exp(-v)) without overflow: exp only ever sees a non-positive number."""
    e = np.exp(-abs(v))
    return 1 / (1 + e) if v >= 0 else e / (1 + e)


@inline_helper
def beats(value, best):
    """True when ``value`` replaces ``best`` in a first-maximum-wins argmax scan.

    Matches numpy.argmax: NaN counts as the maximum and the first NaN wins. Bitwise
    operators, not ``or``/``and``: no branches, so callers can compile to selects.
    """
    return (value > best) | ((value != value) & (best == best))


@serial_kernel
def first_argmax(row):
    """Index of the first maximum of a 1-D row (the first NaN, if any, as numpy.argmax)."""
    best = 0
    for j in range(1, row.size):
        if beats(row[j], row[best]):
            best = j
    return best
