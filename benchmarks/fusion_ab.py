"""A/B in one process: pytorch_cnn's fit() epochs with each convolution fused with its max
pool (what Sequential plans) and with the two run as separate steps, alternating.

    FASTCNN_DATA=../shared/datasets python3 benchmarks/fusion_ab.py --backend numba --rounds 10
"""

from __future__ import annotations

import argparse
import statistics

import fastcnn
from fastcnn.datasets import load_mnist
from fit_cpu_wall import timed_epoch, warmed_pytorch_cnn  # beside this file


def unfused(model):
    """``model`` with every fused pool of its plan run as a step of its own."""
    model.fusions = ("activation",)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--images", type=int, default=3840)
    args = parser.parse_args()
    fastcnn.set_backend(args.backend)
    images, labels = load_mnist("train")
    images, labels = images[:args.images], labels[:args.images]
    models = {"fused": warmed_pytorch_cnn(images, labels, 64),
              "unfused": unfused(warmed_pytorch_cnn(images, labels, 64))}
    # the unfused plan's own kernels (the separate pools) load before the timed rounds too
    timed_epoch(models["unfused"], images[:128], labels[:128], 64)
    results = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            results[name].append(timed_epoch(model, images, labels, 64)[:2])
    for name, rows in results.items():
        print(f"{name}: ms per step {[round(ms, 2) for ms, _ in rows]}, "
              f"CPU/wall {[round(ratio, 2) for _, ratio in rows]}")
    ratios = [u[0] / f[0] for f, u in zip(results["fused"], results["unfused"])]
    print(f"unfused / fused step time: median {statistics.median(ratios):.3f} "
          f"({', '.join(f'{r:.3f}' for r in ratios)})")
    print(f"CPU/wall medians: fused {statistics.median(r for _, r in results['fused']):.3f}, "
          f"unfused {statistics.median(r for _, r in results['unfused']):.3f}")


if __name__ == "__main__":
    main()
