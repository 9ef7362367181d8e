"""A/B in one process: a convolution's backward pass (numba, 2 threads by default) with an
environment switch on and off, in alternating rounds, at the zoo's convolution shapes.

    python benchmarks/conv_backward_ab.py                      # FASTCNN_IMPLICIT=1 / 0
    python benchmarks/conv_backward_ab.py --switch FASTCNN_WINOGRAD --rounds 30

Each round times three calls of ``conv2d_backward_from_input`` per shape, with the input
gradient and without it (the weight gradient alone), under each setting, after the
process's other threads settle. Prints medians in ms and as a share of NumPy's matmul
peak (2 * N*O*C*KH*KW*OH*OW flops a product; the backward pass with dx is two products).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

SHAPES = {  # name: (N, C, O, H, W, K, padding)
    "pytorch_cnn.conv2": (64, 32, 64, 14, 14, 3, 1),
    "kmnist_cnn.conv2": (64, 32, 64, 26, 26, 3, 0),
    "mnist_speedrun.conv2": (128, 16, 32, 14, 14, 3, 1),
    "mnist_speedrun.conv3": (128, 32, 64, 7, 7, 3, 1),
}


def _case(rng, n, c, o, h, w, k, padding):
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    weight = (rng.standard_normal((o, c, k, k), dtype=np.float32) * (c * k * k) ** -0.5)
    out = np.empty((n, o, h + 2 * padding - k + 1, w + 2 * padding - k + 1), np.float32)
    return {"x": x, "weight": weight.astype(np.float32), "bias": np.zeros(o, np.float32),
            "out": out, "dout": rng.standard_normal(out.shape, dtype=np.float32),
            "padding": padding, "dx": np.empty_like(x), "dweight": np.empty_like(weight),
            "dbias": np.empty(o, np.float32),
            "flops": 2.0 * n * o * c * k * k * out.shape[2] * out.shape[3]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switch", default="FASTCNN_IMPLICIT")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import fastcnn
    from fastcnn.bench.peak import matmul_peak
    from fastcnn.bench.timing import settle

    fastcnn.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    cases = {name: _case(rng, *shape) for name, shape in SHAPES.items()}
    times: dict = {}
    with fastcnn.use_backend("numba"):
        kernels = fastcnn.get_backend()
        for case in cases.values():
            kernels.conv2d_forward(case["x"], case["weight"], case["bias"], 1, case["padding"],
                                   "relu", None, case["out"])

        def call(case, with_dx):
            kernels.conv2d_backward_from_input(case["dout"], case["out"], case["weight"],
                                               case["x"], 1, case["padding"], "relu",
                                               case["dx"] if with_dx else None,
                                               case["dweight"], case["dbias"])

        for index in range(args.rounds):
            for name, case in cases.items():
                for with_dx in (True, False):
                    for value in ("1", "0") if index % 2 == 0 else ("0", "1"):
                        os.environ[args.switch] = value
                        call(case, with_dx)
                        settle()
                        start = time.perf_counter()
                        for _ in range(3):
                            call(case, with_dx)
                        times.setdefault((name, with_dx, value), []).append(
                            (time.perf_counter() - start) / 3)
    peak = matmul_peak()["gflops"]
    print(f"numba, {args.threads} threads, {args.rounds} rounds; matmul peak {peak:.0f} GFLOP/s")
    for (name, with_dx, value), samples in times.items():
        median = statistics.median(samples)
        flops = cases[name]["flops"] * (2 if with_dx else 1)
        print(f"{name:22s} {'dx and dW' if with_dx else 'dW only  '} {args.switch}={value}: "
              f"{median * 1e3:7.3f} ms, {flops / median / 1e9 / peak * 100:5.1f}% of the peak")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
