"""Losses, each one fused kernel: loss, gradient and correct-count in a single pass."""

from __future__ import annotations

from . import functional
from .errors import InputError
from .inputs import as_targets
from .parameter import Workspace


class Loss:
    """Call ``loss(pred, target)`` to get the mean loss as a float; ``backward()``
    then returns d(loss)/d(pred). ``compute`` does the same without a host sync."""

    name = "loss"
    target_kind = "labels"  # "labels": int32 (N,); "one_hot": float32 (N, L)
    folds_layer = None  # the class name of a final layer the loss computes itself (its input's)

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
        """pred (N, L): a backend array, NumPy array or torch tensor; target: labels (N,)
        or rows (N, L) as in :mod:`fastcnn.inputs`. Returns the mean loss."""
        pred = functional.to_backend(pred, "pred")
        if len(pred.shape) != 2:
            raise InputError(f"pred must be (N, L) scores, got shape {tuple(pred.shape)}")
        if functional.is_host_array(target):
            targets = as_targets(target, pred.shape[1], self.target_kind, len(pred))
            target = functional.to_backend(targets, "target", dtype=targets.dtype)
        return float(functional.get_backend().to_host(self.compute(pred, target))[0])

    def backward(self):
        """d(mean loss)/d(pred), shape (N, L), on the backend."""
        if self.grad is None:
            raise RuntimeError("call the loss on a batch before backward()")
        return self.grad


class CrossEntropy(Loss):
    """Softmax cross-entropy from logits (torch.nn.CrossEntropyLoss); targets are
    class indices (N,) or one-hot rows (N, L)."""

    name = "cross_entropy"
    folds_layer = "Softmax"  # the fused kernel takes the logits before a final Softmax

    def _kernel(self, pred, target, grad, stats):
        functional.softmax_cross_entropy(pred, target, grad, stats)


class MSE(Loss):
    """Mean squared error over all N*L elements (torch.nn.MSELoss, Keras' mse);
    integer labels are one-hot encoded first."""

    name = "mse"
    target_kind = "one_hot"

    def _kernel(self, pred, target, grad, stats):
        functional.mse_loss(pred, target, grad, stats)


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
