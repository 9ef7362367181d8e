"""The Keras simple CNN of the KMNIST benchmark.

Conv(32, 3x3, ReLU)-Conv(64, 3x3, ReLU)-MaxPool 2-Dropout 0.25-Flatten-
Dense(128, ReLU)-Dropout 0.5-Dense(10) softmax, Keras' glorot_uniform weights;
Adadelta with Keras 2's defaults (lr 1.0, rho 0.95, eps 1e-7), batch 128,
12 epochs; 48k/12k/10k train/validation/test, ROC AUC printed every epoch, the
best validation loss checkpointed, early stopping.
"""

from __future__ import annotations

from ..layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, Softmax
from ..model import Sequential
from .recipe import Recipe

RECIPE = Recipe(
    model="kmnist_cnn", dataset="kmnist", optimizer="adadelta", lr=1.0, batch_size=128, epochs=12,
    optimizer_args={"rho": 0.95, "eps": 1e-7},
    split="48,000 train / 12,000 validation (seeded split of the training set) / 10,000 test; "
          "per-epoch ROC AUC, checkpoint on best validation loss, early stopping (patience 3)",
    reported={"test_accuracy": 0.9512},
    source="KMNIST benchmark, Keras simple CNN",
)


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
