"""Turning user arrays into what the kernels take, or a clear error.

Images (documented conversion, applied by fit/evaluate/predict):
* dtype uint8 is scaled to float32 in [0, 1] (divided by 255); float16/32/64
  are cast to float32 unchanged; any other dtype (int64, bool, ...) is refused
  because its scale is ambiguous: convert it yourself.
* NaN or infinite values are refused.
* Floats that look like unscaled pixels (none negative, some above 2: 0-255 values)
  are used as they are, with an :class:`UnscaledInputWarning`, shown once.
* Shapes, for a model expecting (C, H, W) per sample: (N, C, H, W) as is;
  (N, H, W) when C == 1; (N, H, W, C) channels-last when that is the only
  reading; flat rows (N, C*H*W) in C order (the Kaggle CSV layout). Anything
  else is refused with the expected shape in the message.

Labels: class indices (N,) of an integer dtype (or floats holding whole
numbers) in [0, L), or one-hot rows (N, L).

Torch tensors are accepted wherever arrays are (read through ``.detach().cpu()``).
Counts such as ``epochs`` and ``batch_size`` must be whole numbers (:func:`whole_number`).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from .errors import InputError


class UnscaledInputWarning(UserWarning):
    """Float inputs that look like 0-255 pixels: a network trained on them starts from a
    huge loss (12.8 for pytorch_cnn on MNIST instead of 2.3)."""


UNSCALED_ABOVE = 2.0
"""Non-negative floats above this look like unscaled pixels: scaled images stay in [0, 1]
and standardised ones have negative values."""


def whole_number(value, what: str, minimum: int) -> int:
    """``value`` as an int >= minimum: ints and integral NumPy scalars only (2.5, "3", True refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    if value < minimum:
        raise InputError(f"{what} must be >= {minimum}, got {value}")
    return int(value)


def _host(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, possibly on a GPU or requiring grad
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def as_images(x, expected: tuple | None = None) -> np.ndarray:
    """x as C-contiguous float32 of shape (N, *expected); expected None infers it."""
    x = _host(x)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255.0)
    elif x.dtype.kind == "f":
        x = x.astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            raise InputError(f"inputs contain {np.isnan(x).sum()} NaN and "
                             f"{np.isinf(x).sum()} infinite values; clean the data first")
        if x.size and x.max() > UNSCALED_ABOVE and x.min() >= 0:
            # one message and one place: Python's default filter shows it once per process
            warnings.warn("float inputs go up to more than 2 and none is negative: they look like "
                          "unscaled 0-255 pixels, which train badly; divide them by 255 (uint8 "
                          "images are scaled for you)", UnscaledInputWarning, stacklevel=2)
    else:
        raise InputError(f"inputs of dtype {x.dtype} are ambiguous: pass uint8 images (0-255, "
                         "scaled to [0, 1]) or floats (used as they are)")
    if x.ndim < 2 or x.shape[0] == 0:
        raise InputError(f"inputs need a batch axis and at least one sample, got shape {x.shape}")
    if expected is None:
        expected = x.shape[1:] if x.ndim != 3 else (1,) + x.shape[1:]
    expected = tuple(expected)
    n, sample = x.shape[0], x.shape[1:]
    if sample == expected:
        pass
    elif len(expected) == 3 and expected[0] == 1 and sample == expected[1:]:
        x = x[:, None]
    elif len(expected) == 3 and sample == expected[1:] + expected[:1]:
        x = x.transpose(0, 3, 1, 2)
    elif sample == (int(np.prod(expected)),):
        x = x.reshape((n,) + expected)
    else:
        shown = ", ".join(map(str, expected))
        raise InputError(f"inputs of shape {x.shape} do not fit a model expecting (N, {shown}) "
                         f"per batch; reshape them to (N, {shown})")
    return np.ascontiguousarray(x)


def as_labels(y, num_classes: int, n: int | None = None) -> np.ndarray:
    """Class indices int32 (N,) from indices or one-hot rows, checked against num_classes."""
    y = _host(y)
    if n is not None and (y.ndim == 0 or y.shape[0] != n):
        raise InputError(f"got {n} inputs but labels of shape {y.shape}: one label per input needed")
    if y.ndim == 2 and y.shape[1] == num_classes and y.dtype.kind in "fiub":
        if not np.all((y == 0) | (y == 1)) or not np.all(y.sum(axis=1) == 1):
            raise InputError("2-D labels must be one-hot rows (a single 1 per row)")
        return y.argmax(axis=1).astype(np.int32)
    if y.ndim != 1:
        raise InputError(f"labels must be class indices (N,) or one-hot rows (N, {num_classes}), "
                         f"got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise InputError("float labels must hold whole class numbers (no NaN, no fractions)")
    elif y.dtype.kind not in "iu":
        raise InputError(f"labels of dtype {y.dtype} are not class indices")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)]
        raise InputError(f"labels must be in [0, {num_classes}) for a model with {num_classes} "
                         f"outputs; found {bad[:5].tolist()}")
    return y.astype(np.int32)


def as_binary_targets(y, outputs: int, n: int | None = None) -> np.ndarray:
    """float32 (N, outputs) targets in [0, 1] for a binary loss: (N,) for one output, or
    (N, outputs) rows (multi-label)."""
    y = _host(y)
    if y.dtype.kind not in "fiub":
        raise InputError(f"binary targets of dtype {y.dtype} are not numbers")
    if y.ndim == 1 and outputs == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] != outputs or (n is not None and y.shape[0] != n):
        raise InputError(f"binary targets must have shape ({n}, {outputs})"
                         + (f" or ({n},)" if outputs == 1 else "") + f", got {y.shape}")
    y = np.ascontiguousarray(y, dtype=np.float32)
    if not np.isfinite(y).all() or y.min(initial=0) < 0 or y.max(initial=0) > 1:
        raise InputError("binary targets must lie in [0, 1] (0/1 labels or probabilities)")
    return y


def sample_weights(n: int, sample_weight=None, class_weight=None, classes=None,
                   num_classes: int | None = None) -> np.ndarray | None:
    """float32 (N,) per-sample weights as Keras makes them, or None when neither is given:
    ``sample_weight`` (N,) times ``class_weight[classes[i]]`` (a dict class -> weight;
    classes it leaves out weigh 1). ``classes`` (N,) int are the samples' classes, of
    ``num_classes``; a class_weight key outside [0, num_classes) is an InputError."""
    if sample_weight is None and class_weight is None:
        return None
    weights = np.ones(n, np.float32)
    if sample_weight is not None:
        given = _host(sample_weight)
        if given.dtype.kind not in "fiub" or given.shape not in ((n,), (n, 1)):
            raise InputError(f"sample_weight must be {n} numbers, one per sample (shape ({n},)), "
                             f"got {given.dtype} {given.shape}")
        weights *= given.reshape(n).astype(np.float32)
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise InputError(f"class_weight must be a dict {{class index: weight}}, got "
                             f"{type(class_weight).__name__}")
        bad = [key for key in class_weight if isinstance(key, bool) or
               not isinstance(key, numbers.Integral) or not 0 <= key < num_classes]
        if bad:
            raise InputError(f"class_weight names classes {bad} that do not exist: this model has "
                             f"{num_classes} classes, numbered 0 to {num_classes - 1}")
        table = np.ones(num_classes, np.float32)
        for key, value in class_weight.items():
            table[int(key)] = value
        weights *= table[classes]
    if not np.isfinite(weights).all() or weights.min(initial=0) < 0:
        raise InputError("sample and class weights must be finite and >= 0")
    return weights


def as_targets(y, num_classes: int, kind: str, n: int | None = None) -> np.ndarray:
    """Targets for a loss: int32 indices (kind "labels"), float32 one-hot/real rows
    ("one_hot") or binary rows in [0, 1] ("binary", see :func:`as_binary_targets`)."""
    y = _host(y)
    if kind == "labels":
        return as_labels(y, num_classes, n)
    if kind == "binary":
        return as_binary_targets(y, num_classes, n)
    if y.ndim == 2 and y.dtype.kind == "f":
        if y.shape[1] != num_classes or (n is not None and y.shape[0] != n):
            raise InputError(f"targets must have shape ({n}, {num_classes}), got {y.shape}")
        if not np.isfinite(y).all():
            raise InputError("targets contain NaN or infinite values")
        return np.ascontiguousarray(y, dtype=np.float32)
    labels = as_labels(y, num_classes, n)
    return np.eye(num_classes, dtype=np.float32)[labels]
