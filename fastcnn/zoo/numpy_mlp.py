"""The NumPy MLP tutorial: 784-128 sigmoid-10 softmax, no biases, mean squared error.

Figure: 83.67% test accuracy, the "Test accuracy" that the tutorial's repository notebook
prints after training (its code as written, reproduced by ``compat=True``).

Default (correct) version: inputs scaled to [0, 1], softmax over the classes,
back-propagation through the full softmax Jacobian, SGD at batch 128 with a
learning rate that suits that: the MSE averages over N x 10 elements behind a
softmax, so its gradients are small and lr 8 is right (measured on seeds 0, 1, 2 after
5 epochs: 93.75%, 93.92%, 93.81% test accuracy; lr 4 gives 92.5-92.8%; lr 16 pushes
the softmax into saturation, where the MSE's gradient vanishes, for some seeds: seed 2
never leaves 10%, seed 1 only in its 20th epoch).

``compat=True`` (with :data:`COMPAT_RECIPE`) is the tutorial's code as written:

- raw 0-255 pixels (:class:`~fastcnn.zoo.compat.RawPixels`);
- weights ``np.random.uniform(-1, 1, size=(a, b)) / np.sqrt(a * b)``, i.e. U(-1/sqrt(a b),
  1/sqrt(a b)) for a layer of a x b weights (fastcnn stores (out, in); the bound is
  the same);
- a softmax normalised over the *batch* axis and an error term through only its
  Jacobian's diagonal, ``2 * (out - targets) / N * s * (1 - s)``
  (:class:`~fastcnn.zoo.compat.BatchAxisSoftmax`);
- ``lr = 0.001`` on that error term. It is the gradient of the squared error summed
  over the 10 classes and averaged over the batch; fastcnn's MSE averages over the
  batch *and* the classes, so its gradient is 10 times smaller and the same update
  is lr 0.001 x 10 = 0.01 here (not x 128: the tutorial's error already divides by N);
- 10,000 iterations, each on 128 images drawn with replacement
  (``np.random.randint(0, 50000, size=128)``), no epochs;
- the test accuracy of the batch-axis softmax over all 10,000 test images at once
  (``np.argmax(softmax(...), axis=1)`` on the whole array): in smaller batches every
  prediction would change.

Deviations: the tutorial's validation images are a random 10,000 of the 60,000
(``np.random.shuffle``, unseeded); here they are the last 10,000 (the validation set
only prints progress, it never reaches training). Its weights come from
``np.random.seed(42)``, fastcnn's from the model seed. Its softmax subtracts the
array's global maximum, fastcnn's each column's (the same values unless a whole
column underflows, where the tutorial's gives NaN).
"""

from __future__ import annotations

import math

from ..init import Uniform
from ..layers import Dense, Flatten, Softmax
from ..model import Sequential
from .compat import BatchAxisSoftmax, RawPixels
from .recipe import Recipe

_TUTORIAL = "the tutorial's repository notebook: the test accuracy it prints after training"

RECIPE = Recipe(
    model="numpy_mlp", dataset="mnist", optimizer="sgd", lr=8.0, batch_size=128, epochs=20,
    loss="mse",
    split="50,000 train / 10,000 validation (the last 10,000 training images) / 10,000 test",
    reported={"test_accuracy": 0.8367},
    reported_sources={"test_accuracy": _TUTORIAL},
    source="NumPy MLP from scratch tutorial",
    notes="the article's figure comes from its compat quirks (see compat=True)",
)

COMPAT_RECIPE = RECIPE.replace(
    lr=0.01, iterations=10_000, eval_batch_size=0, protocol="compat",
    split="10,000 batches of 128 drawn with replacement from the first 50,000 training images; "
          "the last 10,000 validate; the 10,000 test images scored in one batch",
    notes="compat=True: the tutorial's code as written, its learning rate 0.001 on its own "
          "gradient scaling (0.01 on fastcnn's mean-over-N*L MSE)")


def tutorial_init(fan_in: int, fan_out: int) -> Uniform:
    """The tutorial's ``uniform(-1, 1, size=(fan_in, fan_out)) / sqrt(fan_in * fan_out)``."""
    bound = 1.0 / math.sqrt(fan_in * fan_out)
    return Uniform(-bound, bound)


def numpy_mlp(seed: int | None = None, compat: bool = False) -> Sequential:
    """(N, 1, 28, 28) -> class probabilities (N, 10) (batch-normalised scores with compat)."""
    head = [RawPixels(name="raw_pixels")] if compat else []
    tail = [BatchAxisSoftmax(name="softmax")] if compat else [Softmax(name="softmax")]
    init1, init2 = (tutorial_init(784, 128), tutorial_init(128, 10)) if compat else \
        ("glorot_uniform", "glorot_uniform")
    return Sequential(head + [
        Flatten(name="flatten"),
        Dense(784, 128, bias=False, activation="sigmoid", init=init1, name="hidden"),
        Dense(128, 10, bias=False, init=init2, name="output"),
    ] + tail, seed=seed, input_shape=(1, 28, 28), name="numpy_mlp" + ("_compat" if compat else ""))
