"""Memory: the numba backend works on ordinary host NumPy arrays, exactly as the
NumPy reference does, so it reuses those four functions."""

from ..numpy_backend import empty, to_device, to_host, zeros

__all__ = ["to_device", "to_host", "empty", "zeros"]
