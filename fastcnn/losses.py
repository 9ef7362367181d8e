"""Losses, each one fused kernel: loss, gradient and correct-count in a single pass.

Every loss takes per-sample weights (fit's ``sample_weight`` and ``class_weight``):
the mean is then sum(w_i * loss_i) / N, Keras' rule. Targets are converted on the
host by :meth:`Loss.targets` (labels, one-hot or smoothed rows, binary rows).
"""

from __future__ import annotations

from . import functional
from .errors import InputError
from .inputs import as_targets
from .parameter import Workspace


def _fraction(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise InputError(f"{what} must be a number in [0, 1), got {value!r}")
    return float(value)


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

    def targets(self, y, outputs: int, n: int | None = None, weighted: bool = False):
        """Host targets for ``y`` (labels (N,) or rows (N, L)) in the form this loss's kernel
        takes; ``weighted`` when per-sample weights come with them."""
        return as_targets(y, outputs, self.target_kind, n)

    def compute(self, pred, target, weights=None):
        """pred (N, L), target from :meth:`targets` and weights (N,) or None, on the backend
        -> stats (2,) [mean loss, correct rows], on the backend."""
        self.grad = self.workspace.get("grad", pred.shape)
        self.stats = self.workspace.get("stats", (2,))
        self._kernel(pred, target, weights, self.grad, self.stats)
        return self.stats

    def _kernel(self, pred, target, weights, grad, stats):
        raise NotImplementedError

    def __call__(self, pred, target, sample_weight=None) -> float:
        """pred (N, L): a backend array, NumPy array or torch tensor; target: labels (N,)
        or rows (N, L) as in :mod:`fastcnn.inputs`; sample_weight (N,) or None.
        Returns the (weighted) mean loss."""
        pred = functional.to_backend(pred, "pred")
        if len(pred.shape) != 2:
            raise InputError(f"pred must be (N, L) scores, got shape {tuple(pred.shape)}")
        weights = None
        if sample_weight is not None:
            from .inputs import sample_weights

            weights = functional.to_backend(sample_weights(len(pred), sample_weight), "sample_weight")
        if functional.is_host_array(target):
            targets = self.targets(target, pred.shape[1], len(pred), weights is not None)
            target = functional.to_backend(targets, "target", dtype=targets.dtype)
        return float(functional.get_backend().to_host(self.compute(pred, target, weights))[0])

    def get_config(self) -> dict:
        return {"name": self.name}

    def backward(self):
        """d(mean loss)/d(pred), shape (N, L), on the backend."""
        if self.grad is None:
            raise RuntimeError("call the loss on a batch before backward()")
        return self.grad


class CrossEntropy(Loss):
    """Softmax cross-entropy from logits (torch.nn.CrossEntropyLoss); targets are
    class indices (N,) or one-hot rows (N, L). ``label_smoothing`` (PyTorch's and
    Keras' argument) trains towards (1 - s) * one_hot + s / L."""

    name = "cross_entropy"
    folds_layer = "Softmax"  # the fused kernel takes the logits before a final Softmax

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = _fraction(label_smoothing, "label_smoothing")

    def targets(self, y, outputs, n=None, weighted=False):
        if not (weighted or self.label_smoothing):
            return as_targets(y, outputs, "labels", n)
        rows = as_targets(y, outputs, "one_hot", n)
        return rows * (1 - self.label_smoothing) + self.label_smoothing / outputs \
            if self.label_smoothing else rows

    def _kernel(self, pred, target, weights, grad, stats):
        if len(target.shape) == 2:  # smoothed or weighted: target rows
            functional.softmax_cross_entropy_soft(pred, target, weights, grad, stats)
        else:
            functional.softmax_cross_entropy(pred, target, grad, stats)

    def get_config(self):
        config = super().get_config()
        if self.label_smoothing:
            config["label_smoothing"] = self.label_smoothing
        return config


class MSE(Loss):
    """Mean squared error over all N*L elements (torch.nn.MSELoss, Keras' mse);
    integer labels are one-hot encoded first."""

    name = "mse"
    target_kind = "one_hot"

    def _kernel(self, pred, target, weights, grad, stats):
        if weights is None:
            functional.mse_loss(pred, target, grad, stats)
        else:
            functional.mse_loss_weighted(pred, target, weights, grad, stats)


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy (torch.nn.BCELoss; Keras' BinaryCrossentropy) of
    probabilities (N, L) from a final Sigmoid, or with ``from_logits=True`` of raw
    scores (torch.nn.BCEWithLogitsLoss: the sigmoid inside, stable for large scores).
    Targets: (N,) 0/1 labels for one output, or (N, L) rows in [0, 1] (multi-label);
    the mean is over all N*L elements; accuracy counts elements right at 0.5."""

    name = "binary_cross_entropy"
    target_kind = "binary"

    def __init__(self, from_logits: bool = False):
        super().__init__()
        if not isinstance(from_logits, bool):
            raise InputError(f"from_logits must be True or False, got {from_logits!r}")
        self.from_logits = from_logits

    def _kernel(self, pred, target, weights, grad, stats):
        kernel = functional.binary_cross_entropy_with_logits if self.from_logits \
            else functional.binary_cross_entropy
        kernel(pred, target, weights, grad, stats)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


class BCEWithLogitsLoss(BinaryCrossEntropy):
    """torch.nn.BCEWithLogitsLoss: BinaryCrossEntropy(from_logits=True)."""

    def __init__(self):
        super().__init__(from_logits=True)

    def get_config(self):
        return {"name": "binary_cross_entropy", "from_logits": True}


class NLLLoss(Loss):
    """Negative log-likelihood of log-probabilities (torch.nn.NLLLoss), for a network
    that ends in :class:`fastcnn.layers.LogSoftmax`; targets are class indices (N,)
    or one-hot rows."""

    name = "nll"

    def _kernel(self, pred, target, weights, grad, stats):
        functional.nll_loss(pred, target, weights, grad, stats)


ALIASES = {
    "cross_entropy": CrossEntropy, "crossentropy": CrossEntropy,
    "categorical_crossentropy": CrossEntropy, "sparse_categorical_crossentropy": CrossEntropy,
    "mse": MSE, "mean_squared_error": MSE,
    "binary_cross_entropy": BinaryCrossEntropy, "binary_crossentropy": BinaryCrossEntropy,
    "bce": BinaryCrossEntropy, "bce_with_logits": BCEWithLogitsLoss,
    "nll": NLLLoss, "nll_loss": NLLLoss,
}

CrossEntropyLoss, MSELoss, BCELoss = CrossEntropy, MSE, BinaryCrossEntropy  # PyTorch's names


def get(spec) -> Loss:
    """A loss from an instance, a name (a key of :data:`ALIASES`) or a config dict
    ({"name": ..., "label_smoothing": ...}, as ``get_config`` gives)."""
    if isinstance(spec, Loss):
        return spec
    config = dict(spec) if isinstance(spec, dict) else {"name": spec}
    name = config.pop("name", None)
    if isinstance(name, str) and name.lower() in ALIASES:
        try:
            return ALIASES[name.lower()](**config)
        except TypeError as exc:
            raise ValueError(f"loss {name!r} does not take {config}: {exc}") from None
    raise ValueError(f"unknown loss {spec!r}; choose one of: {', '.join(ALIASES)}")
