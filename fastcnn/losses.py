"""Losses, each one fused kernel: loss, gradient and correct-count in a single pass."""

from __future__ import annotations

import numpy as np

from .backend import get_backend
from .parameter import Workspace


class Loss:
    """Call ``loss(pred, target)`` to get the mean loss as a float; ``backward()``
    then returns d(loss)/d(pred). ``compute`` does the same without a host sync."""

    name = "loss"
    target_kind = "labels"  # "labels": int32 (N,); "one_hot": float32 (N, L)

    def __init__(self):
        self.workspace = Workspace()
        self.grad = None
        self.stats = None

    def compute(self, pred, target):
        """pred (N, L), target on the backend -> stats (2,) [mean loss, correct rows], on the backend."""
        self.grad = self.workspace.get("grad", pred.shape)
        self.stats = self.workspace.get("stats", (2,))
        self._kernel(pred, target, self.grad, self.stats)
        return self.stats

    def _kernel(self, pred, target, grad, stats):
        raise NotImplementedError

    def __call__(self, pred, target) -> float:
        from .inputs import as_targets

        backend = get_backend()
        if isinstance(pred, np.ndarray):
            pred = backend.to_device(np.ascontiguousarray(pred, dtype=np.float32))
        if isinstance(target, np.ndarray) or isinstance(target, list):
            target = backend.to_device(as_targets(target, pred.shape[1], self.target_kind, len(pred)))
        stats = backend.to_host(self.compute(pred, target))
        return float(stats[0])

    def backward(self):
        """d(mean loss)/d(pred), shape (N, L), on the backend."""
        if self.grad is None:
            raise RuntimeError("call the loss on a batch before backward()")
        return self.grad


class CrossEntropy(Loss):
    """Softmax cross-entropy from logits (torch.nn.CrossEntropyLoss); targets are
    class indices (N,) or one-hot rows (N, L)."""

    name = "cross_entropy"

    def _kernel(self, pred, target, grad, stats):
        get_backend().softmax_cross_entropy(pred, target, grad, stats)


class MSE(Loss):
    """Mean squared error over all N*L elements (torch.nn.MSELoss, Keras' mse);
    integer labels are one-hot encoded first."""

    name = "mse"
    target_kind = "one_hot"

    def _kernel(self, pred, target, grad, stats):
        get_backend().mse_loss(pred, target, grad, stats)


ALIASES = {
    "cross_entropy": CrossEntropy, "crossentropy": CrossEntropy,
    "categorical_crossentropy": CrossEntropy, "sparse_categorical_crossentropy": CrossEntropy,
    "mse": MSE, "mean_squared_error": MSE,
}


def get(spec) -> Loss:
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str) and spec.lower() in ALIASES:
        return ALIASES[spec.lower()]()
    raise ValueError(f"unknown loss {spec!r}; choose one of: {', '.join(ALIASES)}")
