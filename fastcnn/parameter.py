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
        # a copy: on the CPU backends to_device keeps the array, which the caller may reuse
        self.data = get_backend().to_device(np.array(value, dtype=np.float32, order="C", copy=True))
        self.grad = None
        self._spare = None  # a gradient buffer to reuse after zero_grad (no allocation, no fill)
        self._held = None  # the gradient summed so far, while a backward pass adds to it

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
        self.grad = self._spare = self._held = None
        self.state = {key: (new.to_device(np.ascontiguousarray(old.to_host(value)))
                            if hasattr(value, "shape") else value)
                      for key, value in self.state.items()}
        self._backend = current

    def zero_grad(self) -> None:
        """Forget the gradient (``grad`` becomes None, as PyTorch's ``set_to_none``); the
        next backward pass writes a fresh one into the same buffer, without filling it."""
        if self.grad is not None:
            self._spare = self.grad
        self.grad = None

    def grad_buffer(self):
        """The array a backward kernel overwrites with this pass's gradient: ``grad`` itself
        when there is none yet (after :meth:`zero_grad`), reused across steps."""
        if self.grad is None:
            if self._spare is None or self._spare.shape != self.data.shape or \
                    self._spare.dtype != self.data.dtype:
                self._spare = get_backend().zeros(self.shape, dtype=self.data.dtype)
            self.grad, self._spare = self._spare, None
        return self.grad

    def begin_accumulation(self) -> None:
        """Before a backward pass: set the gradient summed so far aside, so that the pass
        writes its own into a second buffer (see :meth:`end_accumulation`)."""
        if self.grad is not None:
            self._held, self.grad = self.grad, None

    def end_accumulation(self) -> None:
        """After the backward pass: grad = the held sum + this pass's gradient (PyTorch adds
        gradients until zero_grad)."""
        held, self._held = self._held, None
        if held is None:
            return
        if self.grad is not None:
            from . import functional

            functional.axpby(1.0, held, 1.0, self.grad, held)
            self._spare = self.grad
        self.grad = held

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
