"""Where fit's batches come from: host arrays (shuffled each epoch) or any iterable of
``(x, y)`` / ``(x, y, sample_weight)`` batches (a generator, a list, a data loader),
checked batch by batch. Each yields host batches (x (B, C, H, W) float32, targets as
the loss takes them, weights (B,) float32 or None), augmented when fit has ``augment``.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError
from .inputs import as_images, sample_weights, whole_number


def is_batch_source(x) -> bool:
    """True for what fit reads as a stream of batches rather than one array: a generator
    or iterator, or an iterable that is not array-like (not an ndarray, tensor or list
    of numbers). A list of (x, y) tuples counts as batches."""
    if isinstance(x, np.ndarray) or hasattr(x, "detach") or hasattr(x, "__array__"):
        return False
    if isinstance(x, (list, tuple)):
        return bool(x) and isinstance(x[0], tuple)
    return hasattr(x, "__iter__") or hasattr(x, "__next__")


def class_indices(targets: np.ndarray, outputs: int) -> tuple[np.ndarray, int]:
    """(each sample's class (N,) int, the number of classes) from a loss's host targets:
    labels, one-hot or smoothed rows (the largest), or one binary output (0 or 1)."""
    if targets.ndim == 1:
        return targets.astype(np.int64), outputs
    if outputs == 1:
        return (targets[:, 0] > 0.5).astype(np.int64), 2
    return targets.argmax(axis=1), outputs


class ArrayBatches:
    """Batches of host arrays x (N, ...), targets (N, ...), weights (N,) or None: each
    epoch in a new order from ``rng`` when ``shuffle``, else in order (views, no copy)."""

    def __init__(self, x, targets, weights, batch_size: int, shuffle: bool, rng,
                 steps_per_epoch: int | None = None, augment=None):
        self.x, self.targets, self.weights = x, targets, weights
        self.batch_size, self.shuffle, self.rng, self.augment = batch_size, shuffle, rng, augment
        available = math.ceil(len(x) / batch_size)
        if steps_per_epoch is not None and steps_per_epoch > available:
            raise InputError(f"steps_per_epoch={steps_per_epoch} asks for more batches than "
                             f"{len(x)} samples make at batch_size={batch_size} ({available})")
        self.steps = available if steps_per_epoch is None else steps_per_epoch

    def epoch(self, epoch: int):
        n, size = len(self.x), self.batch_size
        order = self.rng.permutation(n) if self.shuffle else None
        for step in range(self.steps):
            index = order[step * size:(step + 1) * size] if self.shuffle else \
                slice(step * size, min((step + 1) * size, n))
            xb = self.x[index]
            yield (xb if self.augment is None else self.augment(xb), self.targets[index],
                   None if self.weights is None else self.weights[index])


class IterableBatches:
    """Batches from an iterable of (x, y) or (x, y, sample_weight) tuples.

    An iterator (a generator) is read on across epochs: ``steps_per_epoch`` batches an
    epoch, or until it ends when not given (then it must not end before the last epoch).
    Any other iterable is iterated afresh each epoch (all of it, or its first
    ``steps_per_epoch`` batches). ``convert(x, y, w)`` -> host (x, targets, weights)
    for the model, raising InputError for a bad batch; the error names the batch."""

    def __init__(self, source, convert, steps_per_epoch: int | None = None, augment=None):
        self.source, self.convert, self.augment = source, convert, augment
        self.steps_per_epoch = None if steps_per_epoch is None else \
            whole_number(steps_per_epoch, "steps_per_epoch", 1)
        self.one_pass = iter(source) is source
        self._iterator = source if self.one_pass else None
        self.steps = self.steps_per_epoch
        if self.steps is None and hasattr(source, "__len__"):
            self.steps = len(source)

    def first(self):
        """The first batch, converted: fit builds the model from it. It is the first batch
        the first epoch trains on."""
        iterator = self._iterator if self.one_pass else iter(self.source)
        try:
            batch = next(iterator)
        except StopIteration:
            raise InputError("the batch generator gave no batches") from None
        self._pending = self._checked(batch, 0, 0)
        self._iterator = iterator
        return self._pending

    def epoch(self, epoch: int):
        if not self.one_pass and getattr(self, "_pending", None) is None:
            self._iterator = iter(self.source)
        step = 0
        while self.steps_per_epoch is None or step < self.steps_per_epoch:
            pending, self._pending = getattr(self, "_pending", None), None
            if pending is not None:
                x, y, w = pending
            else:
                try:
                    batch = next(self._iterator)
                except StopIteration:
                    if self.steps_per_epoch is not None or step == 0:
                        self._ran_out(epoch, step)
                    return
                x, y, w = self._checked(batch, epoch, step)
            yield (x if self.augment is None else self.augment(x)), y, w
            step += 1

    def _ran_out(self, epoch: int, step: int):
        wanted = f"the {self.steps_per_epoch} batches of steps_per_epoch" \
            if self.steps_per_epoch is not None else "a batch"
        advice = ("an endless generator (while True: ... yield x, y) or a re-iterable (a "
                  "list of batches, a data loader)" if self.one_pass else
                  "a smaller steps_per_epoch")
        raise InputError(f"the batch generator ran out after {step} batches of epoch "
                         f"{epoch + 1}, which needed {wanted}: pass {advice}")

    def _checked(self, batch, epoch: int, step: int):
        where = f"batch {step + 1} of epoch {epoch + 1} from the generator"
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            shown = f"a {type(batch).__name__}" + (f" of {len(batch)}" if isinstance(batch, (tuple, list)) else "")
            raise InputError(f"{where} is {shown}: yield (x, y) or (x, y, sample_weight) tuples")
        try:
            return self.convert(*batch)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None


def array_converter(model, class_weight, augmenting: bool):
    """The ``convert`` of IterableBatches for ``model``: images checked against its input
    shape (the first batch builds it), targets through its loss, weights as Keras makes them."""
    def convert(x, y, w=None):
        x = as_images(x, model.input_shape)
        if model.input_shape is not None and x.shape[1:] != tuple(model.input_shape):
            raise InputError(f"x has shape {x.shape}, the model takes (N, "
                             f"{', '.join(map(str, model.input_shape))})")
        if not model.built:
            model.build(x.shape[1:])
        n = len(x)
        weighted = w is not None or class_weight is not None
        outputs = model.output_shape[0]
        try:
            targets = model.loss.targets(y, outputs, n, weighted)
        except InputError as exc:
            raise InputError(f"y does not match x ({n} samples): {exc}") from None
        classes, count = class_indices(targets, outputs) if class_weight is not None else (None, None)
        return x, targets, sample_weights(n, w, class_weight, classes, count)
    return convert
