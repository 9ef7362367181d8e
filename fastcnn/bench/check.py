"""Comparing a competitor's results with the NumPy reference before anything is timed."""

from __future__ import annotations

import numpy as np

from ..errors import FastCNNError

TOLERANCE = 1e-3
"""Largest allowed max|result - reference| / max|reference| (float32 sums in another order
differ by ~1e-6; a wrong kernel by ~1)."""


class BenchmarkCheckError(FastCNNError):
    """A competitor's results differ from the reference: its timings would mean nothing."""


def relative_error(result: np.ndarray, reference: np.ndarray) -> float:
    """max|result - reference| scaled by max|reference| (by 1 where the reference is all zero)."""
    result = np.asarray(result, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if result.shape != reference.shape:
        return float("inf")
    if not np.all(np.isfinite(result)):
        return float("inf")
    scale = float(np.max(np.abs(reference), initial=0.0)) or 1.0
    return float(np.max(np.abs(result - reference), initial=0.0)) / scale


def compare(results: dict, reference: dict, what: str, tolerance: float = TOLERANCE) -> None:
    """Raise BenchmarkCheckError naming ``what`` and the first output that differs.

    ``results`` and ``reference`` map output names to host arrays; integer
    outputs (pooling indices) must match exactly.
    """
    for name, expected in reference.items():
        if name not in results:
            raise BenchmarkCheckError(f"{what}: produced no {name!r} to compare with the reference")
        got = np.asarray(results[name])
        expected = np.asarray(expected)
        if np.issubdtype(expected.dtype, np.integer):
            if got.shape != expected.shape or not np.array_equal(got, expected):
                wrong = int(np.sum(got != expected)) if got.shape == expected.shape else "all"
                raise BenchmarkCheckError(
                    f"{what}: {name} differs from the NumPy reference ({wrong} of "
                    f"{expected.size} indices wrong); not timing a wrong result")
            continue
        error = relative_error(got, expected)
        if not error <= tolerance:
            raise BenchmarkCheckError(
                f"{what}: {name} differs from the NumPy reference (max relative error "
                f"{error:.3g} > {tolerance:g}, shape {tuple(got.shape)}); not timing a wrong result")
