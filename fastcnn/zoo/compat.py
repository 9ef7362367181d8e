"""Layers that reproduce a tutorial's quirks bit for bit, for ``compat=True`` models.

They are deliberately wrong in the ways the original code was, so a user can
reproduce the article's number and see what the correct version changes. They
run on the host in NumPy (moving data to and from the backend), which is fine
for the small MLP that uses them.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_backend
from ..layers.base import Layer


class _HostLayer(Layer):
    """A layer computed in NumPy on the host: subclasses define forward_host / backward_host."""

    def forward(self, x, training=False):
        backend = get_backend()
        self._out = self.forward_host(np.asarray(backend.to_host(x), dtype=np.float32))
        return backend.to_device(np.ascontiguousarray(self._out))

    def backward(self, dout, need_input_grad=True):
        if not need_input_grad:
            return None
        backend = get_backend()
        dx = self.backward_host(np.asarray(backend.to_host(dout), dtype=np.float32))
        return backend.to_device(np.ascontiguousarray(dx))


class RawPixels(_HostLayer):
    """Multiplies inputs by 255: the tutorial fed raw 0-255 pixels to the network."""

    def forward_host(self, x):
        return x * np.float32(255.0)

    def backward_host(self, dout):
        return dout * np.float32(255.0)


class BatchAxisSoftmax(_HostLayer):
    """The tutorial's softmax: exp(z) normalised over the *batch* axis (axis 0), not over
    classes, and a backward pass through only the diagonal of its Jacobian,
    dz = dout * s * (1 - s)."""

    def forward_host(self, z):
        e = np.exp(z - z.max(axis=0, keepdims=True))
        return e / e.sum(axis=0, keepdims=True)

    def backward_host(self, dout):
        return dout * self._out * (1 - self._out)


LAYERS = {cls.__name__: cls for cls in (RawPixels, BatchAxisSoftmax)}
