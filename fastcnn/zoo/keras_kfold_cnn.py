"""The Keras K-fold MNIST CNN tutorial (a baseline evaluated by 5-fold cross-validation).

Conv(32, 3x3, valid, ReLU, he_uniform)-MaxPool 2-Flatten-Dense(100, ReLU,
he_uniform)-Dense(10) softmax; SGD lr 0.01 momentum 0.9, batch 32, 10 epochs on
each of 5 folds of the 60k training set.
"""

from __future__ import annotations

from ..layers import Conv2D, Dense, Flatten, MaxPool2D, Softmax
from ..model import Sequential
from .recipe import Recipe

RECIPE = Recipe(
    model="keras_kfold_cnn", dataset="mnist", optimizer="sgd", lr=0.01, batch_size=32, epochs=10,
    optimizer_args={"momentum": 0.9},
    split="5-fold cross-validation over the 60,000 training images (shuffled, seed 1)",
    reported={"mean_accuracy": 0.98677, "std_accuracy": 0.00107, "folds": 5},
    source="Keras K-fold MNIST CNN tutorial",
)


def keras_kfold_cnn(seed: int | None = None, num_classes: int = 10) -> Sequential:
    """(N, 1, 28, 28) -> class probabilities (N, num_classes)."""
    return Sequential([
        Conv2D(1, 32, 3, activation="relu", init="he_uniform", name="conv"),
        MaxPool2D(2, name="pool"),
        Flatten(name="flatten"),
        Dense(32 * 13 * 13, 100, activation="relu", init="he_uniform", name="dense"),
        Dense(100, num_classes, init="glorot_uniform", name="output"),
        Softmax(name="softmax"),
    ], seed=seed, input_shape=(1, 28, 28), name="keras_kfold_cnn")
