"""Small helpers shared by several kernels: activation codes, a vectorisable exp, a
stable sigmoid, and the first-maximum-wins comparison and argmax of max pooling,
softmax and the losses."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from .jit import FASTMATH, inline_helper, serial_kernel

NO_ACTIVATION, RELU, SIGMOID = 0, 1, 2
_ACTIVATION_CODES = {None: NO_ACTIVATION, "relu": RELU, "sigmoid": SIGMOID}


def activation_code(activation) -> int:
    """The integer the kernels use for an entry of contract.ACTIVATIONS."""
    try:
        return _ACTIVATION_CODES[activation]
    except KeyError:
        raise ValueError(f"unknown activation {activation!r}; "
                         f"expected one of {tuple(_ACTIVATION_CODES)}") from None


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose IEEE-754 bits are the int32 ``bits``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


_EXP_HI = np.float32(88.72283905206835)  # above: exp overflows float32
_EXP_LO = np.float32(-87.3365447505531)  # below: exp is subnormal, flushed to 0
_LOG2E = np.float32(1.44269504088896341)
_LN2_HI, _LN2_LO = np.float32(0.693359375), np.float32(-2.12194440e-4)


@inline_helper
def _exp32(x):
    """exp of a float32 in plain arithmetic, so loops calling it vectorise (LLVM has no
    vector exp without SVML, and a libm call per element costs ~18x more). Cephes' expf:
    x = n ln2 + r with |r| <= ln2 / 2, a degree-7 polynomial for exp(r), times 2**n
    built from its bits. Within 3 ulp of exp; 0 below -87.34 (instead of a subnormal),
    inf above 88.72, NaN for NaN."""
    clamped = min(max(x, _EXP_LO), _EXP_HI)  # NaN -> _EXP_LO, so n stays an integer
    n = np.floor(clamped * _LOG2E + np.float32(0.5))
    r = clamped - n * _LN2_HI - n * _LN2_LO
    p = ((((np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)) * r
            + np.float32(8.3334519073e-3)) * r + np.float32(4.1665795894e-2)) * r
         + np.float32(1.6666665459e-1)) * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1)
    # 2**n as 2**(n >> 1) * 2**(n - (n >> 1)): each factor normal for n in [-126, 128]
    half = np.int32(n) >> np.int32(1)
    value = (p * _float32_from_bits((half + np.int32(127)) << np.int32(23))
             * _float32_from_bits((np.int32(n) - half + np.int32(127)) << np.int32(23)))
    return x if x != x else np.float32(0) if x < _EXP_LO else np.float32(np.inf) if x > _EXP_HI else value


def fast_exp(x):
    """exp(x): :func:`_exp32` for float32, np.exp for other types (float64 stays exact)."""
    return np.exp(x)


@overload(fast_exp, fastmath=FASTMATH)
def _fast_exp_overload(x):
    if x == types.float32:
        return lambda x: _exp32(x)
    return lambda x: np.exp(x)


@inline_helper
def sigmoid(v):
    """1 / (1 + exp(-v)) without overflow: exp only ever sees a non-positive number."""
    e = fast_exp(-abs(v))
    return (np.float32(1) if v >= 0 else e) / (np.float32(1) + e)


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
