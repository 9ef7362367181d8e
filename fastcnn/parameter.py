"""Parameters (weights that live on the active backend) and reusable buffers."""

from __future__ import annotations

import numpy as np

from .backend import backend_name, get_backend


class Parameter:
    """A named weight array on the active backend, with its gradient and optimizer state.

    ``data`` and ``grad`` are backend arrays (NumPy arrays on CPU backends,
    device arrays on cuda). ``state`` holds optimizer slots (e.g. Adam's
    moments), which move between backends together with the weight.
    """

    def __init__(self, value: np.ndarray, trainable: bool = True):
        self.trainable = trainable
        self.state: dict[str, object] = {}
        self._backend = backend_name()
        self.data = get_backend().to_device(np.ascontiguousarray(value, dtype=np.float32))
        self.grad = None

    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def numpy(self) -> np.ndarray:
        """A host copy of the weight, shape ``self.shape``, float32."""
        return np.array(self._module().to_host(self.data), dtype=np.float32, copy=True)

    def assign(self, value: np.ndarray) -> None:
        """Overwrite the weight with a host array of the same shape."""
        value = np.asarray(value)
        if value.shape != self.shape:
            raise ValueError(f"cannot assign an array of shape {value.shape} to a parameter "
                             f"of shape {self.shape}")
        self.data = self._module().to_device(np.ascontiguousarray(value, dtype=np.float32))

    def ensure_backend(self) -> None:
        """Move weight, gradient and optimizer state to the active backend if they live elsewhere."""
        current = backend_name()
        if current == self._backend:
            return
        old, new = self._module(), get_backend()
        self.data = new.to_device(np.ascontiguousarray(old.to_host(self.data)))
        self.grad = None
        self.state = {key: (new.to_device(np.ascontiguousarray(old.to_host(value)))
                            if hasattr(value, "shape") else value)
                      for key, value in self.state.items()}
        self._backend = current

    def zero_grad(self) -> None:
        """Forget the gradient (kernels overwrite it on the next backward pass)."""
        self.grad = None

    def grad_buffer(self):
        """The gradient array, allocated on first use and reused afterwards."""
        if self.grad is None:
            self.grad = get_backend().zeros(self.shape)
        return self.grad

    def _module(self):
        from .backend import _load

        return _load(self._backend)

    def __repr__(self) -> str:
        flag = "" if self.trainable else ", frozen"
        return f"Parameter(shape={self.shape}{flag})"


class Workspace:
    """Output and scratch buffers a layer reuses across batches of the same shape.

    Kernels write into buffers they are given; this keeps one per (role,
    shape, dtype, backend) so the steady state of training allocates nothing.
    """

    def __init__(self):
        self._buffers: dict[str, tuple] = {}

    def get(self, role: str, shape: tuple, dtype=np.float32):
        """A backend array for ``role`` of ``shape`` (contents undefined)."""
        key = (tuple(int(s) for s in shape), np.dtype(dtype).str, backend_name())
        held = self._buffers.get(role)
        if held is None or held[0] != key:
            held = (key, get_backend().empty(key[0], dtype=dtype))
            self._buffers[role] = held
        return held[1]

    def clear(self) -> None:
        self._buffers.clear()
