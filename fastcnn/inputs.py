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


def as_targets(y, num_classes: int, kind: str, n: int | None = None) -> np.ndarray:
    """Targets for a loss: int32 indices (kind "labels") or float32 one-hot/real rows ("one_hot")."""
    y = _host(y)
    if kind == "labels":
        return as_labels(y, num_classes, n)
    if y.ndim == 2 and y.dtype.kind == "f":
        if y.shape[1] != num_classes or (n is not None and y.shape[0] != n):
            raise InputError(f"targets must have shape ({n}, {num_classes}), got {y.shape}")
        if not np.isfinite(y).all():
            raise InputError("targets contain NaN or infinite values")
        return np.ascontiguousarray(y, dtype=np.float32)
    labels = as_labels(y, num_classes, n)
    return np.eye(num_classes, dtype=np.float32)[labels]
