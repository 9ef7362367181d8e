"""5-fold keras_kfold_cnn, 1 epoch per fold, on each executor: wall clock, the folds'
own training time, and whether the fold scores agree.

    python benchmarks/bench_cv_executors.py [--limit N] [--epochs E]

Prints one Markdown row per executor (in-process, local, dask) for RESULTS.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    import fastcnn
    from fastcnn.datasets import kfold, load

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N training images (default all)")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    x, y = load("mnist", "train", progress=False)
    x, y = x[:args.limit], y[:args.limit]
    folds = list(kfold(len(x), 5, seed=1, sklearn=True))
    print(f"{len(x):,} images, 5 folds x {args.epochs} epoch(s), {fastcnn.backend_name()} backend, "
          f"{fastcnn.distributed.jobs.cores()} cores")
    print("| executor | wall clock | folds' own training time (sum) | mean val accuracy | same scores as in-process |")
    print("|---|---:|---:|---:|---|")
    reference = None
    for executor in (None, "local", "dask"):
        start = time.perf_counter()
        result = fastcnn.cross_validate("keras_kfold_cnn", x, y, cv=folds, fit={"epochs": args.epochs},
                                        executor=executor, progress=False)
        wall = time.perf_counter() - start
        reference = reference if reference is not None else result.scores["val_accuracy"]
        same = np.array_equal(result.scores["val_accuracy"], reference)
        print(f"| {result.executor} | {wall:.1f} s | {result.fit_seconds.sum():.1f} s | "
              f"{result.mean():.2%} | {'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
