"""CPU time / wall time of whole fit() epochs, as issue 9 measured it.

``fastcnn bench`` times training steps; this times what a user runs: pytorch_cnn's
``fit()`` on the first 3,840 MNIST training images (60 steps of 64), shuffling,
batching, loss bookkeeping and callbacks included. Each line is one epoch.

    FASTCNN_DATA=../shared/datasets python3 benchmarks/fit_cpu_wall.py --backends numba,cython
"""

from __future__ import annotations

import argparse
import time

import fastcnn
from fastcnn import zoo
from fastcnn.bench.environment import cpu_ticks, steal_share
from fastcnn.datasets import load_mnist


def warmed_pytorch_cnn(images, labels, batch: int):
    """pytorch_cnn compiled with its recipe's Adam, after one warm-up epoch of two batches
    (kernels compiled or loaded, buffers allocated), on the active backend."""
    model = zoo.get("pytorch_cnn", seed=0)
    model.compile(optimizer="adam", loss="cross_entropy", lr=1e-3)
    model.fit(images[:2 * batch], labels[:2 * batch], epochs=1, batch_size=batch, verbose=0)
    return model


def timed_epoch(model, images, labels, batch: int) -> tuple[float, float, float | None]:
    """(ms per step, CPU/wall, host steal share) of one fit() epoch of ``model``."""
    steps = -(-len(images) // batch)
    ticks, wall, cpu = cpu_ticks(), time.perf_counter(), time.process_time()
    model.fit(images, labels, epochs=1, batch_size=batch, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall * 1e3 / steps, cpu / wall, steal_share(ticks, cpu_ticks())


def epochs_of(backend: str, images, labels, epochs: int,
              batch: int) -> list[tuple[float, float, float | None]]:
    """[(ms per step, CPU/wall, host steal share)] for ``epochs`` fit() epochs on
    ``backend``, after one warm-up."""
    with fastcnn.use_backend(backend):
        model = warmed_pytorch_cnn(images, labels, batch)
        return [timed_epoch(model, images, labels, batch) for _ in range(epochs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="numba,cython")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--images", type=int, default=3840)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        fastcnn.set_num_threads(args.threads)
    images, labels = load_mnist("train")
    images, labels = images[:args.images], labels[:args.images]
    for backend in args.backends.split(","):
        for step_ms, ratio, steal in epochs_of(backend, images, labels, args.epochs,
                                               args.batch_size):
            stolen = "" if steal is None else f", host steal {steal:.1%}"
            print(f"{backend}: {step_ms:.2f} ms per step, CPU/wall {ratio:.2f}{stolen}", flush=True)


if __name__ == "__main__":
    main()
