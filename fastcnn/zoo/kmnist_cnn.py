"""The Keras simple CNN of the KMNIST benchmark, and the article that trains it on KMNIST.

Conv(32, 3x3, ReLU)-Conv(64, 3x3, ReLU)-MaxPool 2-Dropout 0.25-Flatten-
Dense(128, ReLU)-Dropout 0.5-Dense(10) softmax, Keras' glorot_uniform weights and
zero biases; Adadelta with Keras 2's defaults (lr 1.0, rho 0.95, eps 1e-7), batch 128,
12 epochs.

Figure: 95.12% test accuracy, the KMNIST benchmark's table (the rois-codh/kmnist
repository's README, "Keras Simple CNN" on Kuzushiji-MNIST). Two protocols:

- ``benchmark`` (:data:`BENCHMARK_RECIPE`), the protocol behind that figure: the
  benchmark's script (Keras' mnist_cnn example on KMNIST) trains on all 60,000
  training images for 12 epochs, no early stopping, and scores the 10,000 test images
  (it passes them as ``validation_data``, which only prints them each epoch).
- ``article`` (:data:`RECIPE`), the article's: 48,000 train / 12,000 validation, ROC
  AUC printed every epoch, a checkpoint of the best validation loss, early stopping.
  The article does not publish a test figure of its own; it quotes the benchmark's.

Deviations: the article's split and early-stopping patience are not given exactly:
a seeded 80/20 split of the training images and patience 3 are used.
"""

from __future__ import annotations

from ..layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, Softmax
from ..model import Sequential
from .recipe import Recipe

_BENCHMARK = "the KMNIST benchmark (rois-codh/kmnist README): Keras Simple CNN, Kuzushiji-MNIST"

RECIPE = Recipe(
    model="kmnist_cnn", dataset="kmnist", optimizer="adadelta", lr=1.0, batch_size=128, epochs=12,
    optimizer_args={"rho": 0.95, "eps": 1e-7},
    split="48,000 train / 12,000 validation (seeded split of the training set) / 10,000 test; "
          "per-epoch ROC AUC, checkpoint on best validation loss, early stopping (patience 3)",
    reported={"test_accuracy": 0.9512},
    reported_sources={"test_accuracy": _BENCHMARK},
    source="KMNIST benchmark, Keras simple CNN",
)

BENCHMARK_RECIPE = RECIPE.replace(
    protocol="benchmark",
    split="all 60,000 training images, 12 epochs, no early stopping; test on the 10,000 test "
          "images (also shown each epoch, as the benchmark's validation_data)")

PROTOCOLS = {"article": RECIPE, "benchmark": BENCHMARK_RECIPE}


def kmnist_cnn(seed: int | None = None, num_classes: int = 10) -> Sequential:
    """(N, 1, 28, 28) -> class probabilities (N, num_classes)."""
    return Sequential([
        Conv2D(1, 32, 3, activation="relu", init="glorot_uniform", name="conv1"),
        Conv2D(32, 64, 3, activation="relu", init="glorot_uniform", name="conv2"),
        MaxPool2D(2, name="pool"),
        Dropout(0.25, name="dropout1"),
        Flatten(name="flatten"),
        Dense(64 * 12 * 12, 128, activation="relu", init="glorot_uniform", name="dense"),
        Dropout(0.5, name="dropout2"),
        Dense(128, num_classes, init="glorot_uniform", name="output"),
        Softmax(name="softmax"),
    ], seed=seed, input_shape=(1, 28, 28), name="kmnist_cnn")
