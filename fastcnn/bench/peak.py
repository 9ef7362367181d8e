"""The machine's attainable GEMM rate: a large float32 matmul in NumPy's BLAS.

Measured in the same run and with the same threads as the kernels, so that a
kernel's "share of peak" compares like with like on a machine whose load varies.
"""

from __future__ import annotations

import numpy as np

from ..backend import use_backend

from .timing import Competitor, race


def matmul_peak(size: int = 2048, repeats: int = 5, min_time: float = 0.2) -> dict:
    """{"gflops": median rate, "best_gflops": fastest round, "size": n} of an n x n x n
    float32 matmul (2 n**3 floating-point operations)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    # inside the numpy backend, whose BLAS policy leaves BLAS its own thread count
    competitor = Competitor("numpy matmul", 1, lambda: np.matmul(a, b, out=out),
                            context=lambda: use_backend("numpy"))
    competitor.time_calls(1)
    race([competitor], repeats, min_time)
    flops = 2.0 * size ** 3
    return {"gflops": flops / competitor.median / 1e9,
            "best_gflops": flops / min(competitor.samples) / 1e9, "size": size}
