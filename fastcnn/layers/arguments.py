"""Arguments that PyTorch and Keras spell differently (stride/strides, p/rate, ...)."""

from __future__ import annotations

import numpy as np


def either(layer: str, name: str, value, other_name: str, other_value, default=None):
    """Whichever of ``name`` (PyTorch's spelling) and ``other_name`` (Keras') was given, else
    ``default``; a ValueError when both were given and disagree."""
    if value is not None and other_value is not None and value != other_value:
        raise ValueError(f"{layer} got {name}={value!r} and {other_name}={other_value!r}; "
                         "pass one of them")
    return value if value is not None else other_value if other_value is not None else default


def count(layer: str, what: str, value, minimum: int = 1) -> int:
    """A whole number >= ``minimum`` (not a bool), or a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{layer} {what} must be a whole number >= {minimum}, got {value!r}")
    return int(value)
