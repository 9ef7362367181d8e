"""A/B in one process: a zoo model's training step under environment settings that the
kernels read at every call (FASTCNN_IMPLICIT, FASTCNN_WINOGRAD, FASTCNN_OWN_GEMM,
FASTCNN_SPARSE, FASTCNN_BN_BLOCKS, FASTCNN_DIRECT), in alternating rounds, so that a host
whose speed drifts treats every variant alike.

    python benchmarks/step_ab.py FASTCNN_IMPLICIT=1 FASTCNN_IMPLICIT=0
    NUMBA_NUM_THREADS=1 python benchmarks/step_ab.py --model pytorch_cnn --batch 64 \\
        FASTCNN_WINOGRAD=1 FASTCNN_WINOGRAD=0

Each variant is a comma-separated list of NAME=VALUE; each round times ``--steps`` calls
of ``train_step`` on random images per variant. Prints each variant's median and 20th
percentile milliseconds per step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="NAME=VALUE[,NAME=VALUE...] per variant")
    parser.add_argument("--model", default="mnist_speedrun")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args(argv)
    for variant in args.variants:
        if not all("=" in setting for setting in variant.split(",")):
            parser.error(f"{variant!r}: a variant is NAME=VALUE[,NAME=VALUE...]")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import fastcnn
    from fastcnn import zoo

    fastcnn.set_backend(args.backend)
    model = zoo.get(args.model, seed=0)
    model.compile(optimizer="adam", loss="cross_entropy")
    rng = np.random.default_rng(0)
    shape = model.input_shape
    x = rng.random((args.batch * args.steps,) + tuple(shape), dtype=np.float32)
    y = rng.integers(0, 10, len(x)).astype(np.int32)
    batches = [(x[i:i + args.batch], y[i:i + args.batch]) for i in range(0, len(x), args.batch)]
    for images, labels in batches[:3]:  # compile or load every kernel
        model.train_step(images, labels)
    times = {variant: [] for variant in args.variants}
    for _ in range(args.rounds):
        for variant in args.variants:
            for setting in variant.split(","):
                name, value = setting.split("=", 1)
                os.environ[name] = value
            start = time.perf_counter()
            for images, labels in batches:
                model.train_step(images, labels)
            times[variant].append((time.perf_counter() - start) / len(batches) * 1e3)
    for variant, found in times.items():
        print(f"{variant}: step {statistics.median(found):.3f} ms median, "
              f"{np.percentile(found, 20):.3f} ms 20th percentile ({args.model}, batch "
              f"{args.batch}, {args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
