"""The PyTorch MNIST CNN tutorial: two conv blocks, a dropout-regularised classifier.

Conv(1->32, 3, pad 1)-ReLU-MaxPool 2-Conv(32->64, 3, pad 1)-ReLU-MaxPool 2-
Flatten-Dense(3136->128)-ReLU-Dropout 0.5-Dense(128->10), trained on logits with
cross-entropy and Adam 1e-3 at batch 64, keeping the epoch with the best
validation loss; the official test set is split 9,000 validation / 1,000 test.
Layer names match the tutorial's nn.Module (conv1, conv2, fc1, fc2), so its
state_dict loads as it is.
"""

from __future__ import annotations

from ..layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from ..model import Sequential
from .recipe import Recipe

RECIPE = Recipe(
    model="pytorch_cnn", dataset="mnist", optimizer="adam", lr=1e-3, batch_size=64, epochs=100,
    split="train on the 60,000 training images; the 10,000 test images split 9,000 validation / "
          "1,000 test; keep the epoch with the best validation loss",
    reported={"test_accuracy": 0.993, "best_val_loss": 0.0209, "best_epoch": 12},
    source="PyTorch MNIST CNN tutorial",
)


def pytorch_cnn(seed: int | None = None, num_classes: int = 10) -> Sequential:
    """The tutorial's network for (N, 1, 28, 28) inputs; outputs logits (N, num_classes)."""
    return Sequential([
        Conv2D(1, 32, 3, padding=1, name="conv1"), ReLU(name="relu1"), MaxPool2D(2, name="pool1"),
        Conv2D(32, 64, 3, padding=1, name="conv2"), ReLU(name="relu2"), MaxPool2D(2, name="pool2"),
        Flatten(name="flatten"),
        Dense(64 * 7 * 7, 128, name="fc1"), ReLU(name="relu3"), Dropout(0.5, name="dropout"),
        Dense(128, num_classes, name="fc2"),
    ], seed=seed, input_shape=(1, 28, 28), name="pytorch_cnn")
