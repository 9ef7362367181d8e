"""The PyTorch MNIST CNN tutorial: two conv blocks, a dropout-regularised classifier.

Conv(1->32, 3, pad 1)-ReLU-MaxPool 2-Conv(32->64, 3, pad 1)-ReLU-MaxPool 2-
Flatten-Dense(3136->128)-ReLU-Dropout 0.5-Dense(128->10), trained on logits with
cross-entropy and Adam 1e-3 at batch 64 for 100 epochs, saving the model whenever
the validation loss improves; the official test set is split 9,000 validation /
1,000 test. The weighted layers carry the names the tutorial's repository gives its
nn.Module's attributes (``conv_1``, ``conv_2``, ``linear_1``, ``linear_2``), so the
state_dict its training script saves loads as it is.

Figures: 99.3% test accuracy on the 1,000 held-out images and the best validation
loss 0.0209 at epoch 12, as the tutorial reports them (its training log and test
cell). Deviation: the 9,000/1,000 split is a seeded permutation of the test images;
the tutorial's own draw cannot be repeated outside its code.
"""

from __future__ import annotations

from ..layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from ..model import Sequential
from .recipe import Recipe

_NOTEBOOK = "the tutorial's training log and test cell"

RECIPE = Recipe(
    model="pytorch_cnn", dataset="mnist", optimizer="adam", lr=1e-3, batch_size=64, epochs=100,
    split="train on the 60,000 training images; the 10,000 test images split 9,000 validation / "
          "1,000 test; save the model whenever the validation loss improves, keep the best",
    reported={"test_accuracy": 0.993, "best_val_loss": 0.0209, "best_epoch": 12},
    reported_sources={key: _NOTEBOOK for key in ("test_accuracy", "best_val_loss", "best_epoch")},
    source="PyTorch MNIST CNN tutorial",
)


def pytorch_cnn(seed: int | None = None, num_classes: int = 10) -> Sequential:
    """The tutorial's network for (N, 1, 28, 28) inputs; outputs logits (N, num_classes)."""
    return Sequential([
        Conv2D(1, 32, 3, padding=1, name="conv_1"), ReLU(name="relu_1"),
        MaxPool2D(2, name="max_pool2d_1"),
        Conv2D(32, 64, 3, padding=1, name="conv_2"), ReLU(name="relu_2"),
        MaxPool2D(2, name="max_pool2d_2"),
        Flatten(name="flatten"),
        Dense(64 * 7 * 7, 128, name="linear_1"), ReLU(name="relu_3"), Dropout(0.5, name="dropout"),
        Dense(128, num_classes, name="linear_2"),
    ], seed=seed, input_shape=(1, 28, 28), name="pytorch_cnn")
