"""The Keras K-fold MNIST CNN tutorial (a baseline evaluated by 5-fold cross-validation).

Conv(32, 3x3, valid, ReLU, he_uniform)-MaxPool 2-Flatten-Dense(100, ReLU,
he_uniform)-Dense(10) softmax, biases zero (Keras' defaults); SGD lr 0.01
momentum 0.9, batch 32, 10 epochs on each of 5 folds of the 60k training set.

The recipe as the tutorial wrote it:
- folds: scikit-learn's ``KFold(5, shuffle=True, random_state=1)``, reimplemented
  by ``fastcnn.datasets.kfold(n, 5, seed=1, sklearn=True)`` (the same indices);
  each fold's model is fresh, fit with the held-out fold as validation data;
- the figure, mean ± std (NumPy's population std) of the 5 fold accuracies:
  98.677% ± 0.107 (``reported``), from the article's text (its printed summary
  of the baseline, ``mean=98.677 std=0.107, n=5``);
- the final step: one model trained on all 60,000 training images and scored
  on the 10,000 test images (``fastcnn reproduce keras_kfold_cnn`` reports it).
  The article finalises its improved (deeper) variant, so no article figure is
  set beside this baseline's test accuracy.

Deviations, none of which changes the arithmetic of a step: fold i's weights
come from seed ``seed + i`` and each epoch's shuffle from the model's seeded
generator (Keras draws both from its global RNG); SGD's momentum is PyTorch's
form (v = m v + g; p -= lr v), equal to Keras' (v = m v - lr g; p += v) at a
constant learning rate; evaluation runs in batches of 256, not 32 (the same
scores).
"""

from __future__ import annotations

from ..layers import Conv2D, Dense, Flatten, MaxPool2D, Softmax
from ..model import Sequential
from .recipe import Recipe

RECIPE = Recipe(
    model="keras_kfold_cnn", dataset="mnist", optimizer="sgd", lr=0.01, batch_size=32, epochs=10,
    optimizer_args={"momentum": 0.9},
    split="5-fold cross-validation over the 60,000 training images (scikit-learn's "
          "KFold(5, shuffle=True, random_state=1)), then one model trained on all of them "
          "and tested on the 10,000 test images",
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
