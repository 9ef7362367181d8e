"""The NumPy MLP tutorial: 784-128 sigmoid-10 softmax, no biases, mean squared error.

Default (correct) version: inputs scaled to [0, 1], softmax over the classes,
back-propagation through the full softmax Jacobian, SGD at batch 128 with a
learning rate that suits that: the MSE averages over N x 10 elements behind a
softmax, so its gradients are small and lr 16 is right (measured: 95.0% test
accuracy after 5 epochs; lr 1 gives 90.4%).

``compat=True`` reproduces the original code's quirks, which its ~83% figure
depends on: raw 0-255 pixels, a softmax normalised over the *batch* axis, MSE
back-propagated through only the diagonal of the softmax derivative, and the
learning rate 0.001 tuned to those (applied to the per-sample mean of the
squared error summed over classes and over the batch, i.e. lr 0.001 x 128 x 10
= 1.28 on fastcnn's MSE, which averages over the batch and the 10 classes).
"""

from __future__ import annotations

from ..layers import Dense, Flatten, Softmax
from ..model import Sequential
from .compat import BatchAxisSoftmax, RawPixels
from .recipe import Recipe

RECIPE = Recipe(
    model="numpy_mlp", dataset="mnist", optimizer="sgd", lr=16.0, batch_size=128, epochs=20,
    loss="mse",
    split="50,000 train / 10,000 validation (the last 10,000 training images) / 10,000 test",
    reported={"test_accuracy": 0.83},
    source="NumPy MLP from scratch tutorial",
    notes="the article's figure comes from its compat quirks (see compat=True)",
)

COMPAT_RECIPE = RECIPE.replace(lr=1.28, notes="compat=True: the original code's quirks and learning rate")


def numpy_mlp(seed: int | None = None, compat: bool = False) -> Sequential:
    """(N, 1, 28, 28) -> class probabilities (N, 10) (batch-normalised scores with compat)."""
    head = [RawPixels(name="raw_pixels")] if compat else []
    tail = [BatchAxisSoftmax(name="softmax")] if compat else [Softmax(name="softmax")]
    return Sequential(head + [
        Flatten(name="flatten"),
        Dense(784, 128, bias=False, activation="sigmoid", init="glorot_uniform", name="hidden"),
        Dense(128, 10, bias=False, init="glorot_uniform", name="output"),
    ] + tail, seed=seed, input_shape=(1, 28, 28), name="numpy_mlp" + ("_compat" if compat else ""))
