"""Milliseconds per full-batch iteration of fixed_kernel_cnn (60,000 MNIST images), per backend.

The frozen convolution and pooling are computed once per fit(); this times only the
gradient steps: after a warm-up fit, two fits of 5 and 105 iterations, the difference
over 100. Backends are
run one after another in the same process, `rounds` times, interleaved.

    FASTCNN_DATA=../shared/datasets python3 benchmarks/full_batch_iteration.py numba cython
"""

import sys
import time

import fastcnn


def milliseconds_per_iteration(backend: str, x, y) -> float:
    with fastcnn.use_backend(backend):
        model = fastcnn.zoo.get("fixed_kernel_cnn", seed=0)
        recipe = fastcnn.zoo.recipe("fixed_kernel_cnn")
        model.compile(recipe.make_optimizer(), recipe.loss)
        model.fit(x, y, epochs=2, batch_size=len(x), shuffle=False, verbose=0)  # buffers allocated
        seconds = []
        for iterations in (5, 105):
            start = time.perf_counter()
            model.fit(x, y, epochs=iterations, batch_size=len(x), shuffle=False, verbose=0)
            seconds.append(time.perf_counter() - start)
    return (seconds[1] - seconds[0]) / 100 * 1000


def main(backends, rounds: int = 3) -> None:
    (x, y), _ = fastcnn.datasets.load("mnist")
    for backend in backends:
        milliseconds_per_iteration(backend, x[:1000], y[:1000])  # compile / warm up
    for round_ in range(rounds):
        line = ", ".join(f"{b} {milliseconds_per_iteration(b, x, y):.1f} ms" for b in backends)
        print(f"round {round_ + 1}: {line}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["numba", "cython"])
