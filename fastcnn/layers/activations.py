"""Element-wise activations (ReLU, Sigmoid, Tanh, LeakyReLU, ELU, GELU), Softmax over the
class axis, and the ``activation=`` names Conv2D and Dense accept."""

from __future__ import annotations

import math
import numbers

from .. import functional
from ..kernels.contract import ACTIVATIONS
from .base import Layer


class _Activation(Layer):
    """Shape-preserving layer; backward uses the forward output."""

    kernel = ""  # "relu", "sigmoid", "tanh" or "softmax": the contract's <kernel>_forward/_backward

    def forward(self, x, training=False):
        out = self.workspace.get("out", x.shape)
        getattr(functional, f"{self.kernel}_forward")(x, out)
        self._out = out
        return out

    def backward(self, dout, need_input_grad=True):
        if not need_input_grad:
            return None
        dx = self.workspace.get("dx", dout.shape)
        getattr(functional, f"{self.kernel}_backward")(dout, self._out, dx)
        return dx


class ReLU(_Activation):
    """max(x, 0), any shape."""

    kernel = "relu"
    contract_activation = "relu"  # a Conv2D/Dense before it applies it in its own kernel


class Sigmoid(_Activation):
    """1 / (1 + exp(-x)), any shape."""

    kernel = "sigmoid"
    contract_activation = "sigmoid"


class Tanh(_Activation):
    """tanh(x), any shape."""

    kernel = "tanh"


class Softmax(_Activation):
    """(N, L) -> (N, L) probabilities. Before a cross-entropy loss, Sequential
    trains on the logits with the fused softmax-cross-entropy kernel instead."""

    kernel = "softmax"

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"Softmax expects (N, L) inputs, the previous layer gives "
                             f"(N, {', '.join(map(str, input_shape))}) (add a Flatten?)")
        return input_shape


class _InputActivation(Layer):
    """Shape-preserving layer whose backward pass needs the forward input x (kept, not
    copied: the previous layer's output stays until the next forward pass)."""

    def _forward(self, x, out) -> None:
        raise NotImplementedError

    def _backward(self, dout, x, dx) -> None:
        raise NotImplementedError

    def forward(self, x, training=False):
        out = self.workspace.get("out", x.shape)
        self._forward(x, out)
        self._x = x
        return out

    def backward(self, dout, need_input_grad=True):
        if not need_input_grad:
            return None
        dx = self.workspace.get("dx", dout.shape)
        self._backward(dout, self._x, dx)
        return dx


def _real(layer: str, name: str, value, positive: bool = False) -> float:
    """A finite real number (positive when asked), or a TypeError/ValueError saying so."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{layer} {name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{layer} {name} must be a finite{' positive' if positive else ''} "
                         f"number, got {value!r}")
    return float(value)


class LeakyReLU(_InputActivation):
    """x where x > 0, else negative_slope * x; any shape. PyTorch's default slope 0.01
    (Keras 3's LeakyReLU defaults to 0.3: pass it to match)."""

    def __init__(self, negative_slope: float = 0.01, name: str | None = None,
                 trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.negative_slope = _real("LeakyReLU", "negative_slope", negative_slope)

    def _forward(self, x, out):
        functional.leaky_relu_forward(x, self.negative_slope, out)

    def _backward(self, dout, x, dx):
        functional.leaky_relu_backward(dout, x, self.negative_slope, dx)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_InputActivation):
    """x where x > 0, else alpha * (exp(x) - 1); any shape (PyTorch's and Keras' alpha 1.0)."""

    def __init__(self, alpha: float = 1.0, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.alpha = _real("ELU", "alpha", alpha)

    def _forward(self, x, out):
        functional.elu_forward(x, self.alpha, out)

    def _backward(self, dout, x, dx):
        functional.elu_backward(dout, x, self.alpha, dx)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class GELU(_InputActivation):
    """x * Phi(x), Phi the standard normal CDF (the exact erf form, PyTorch's and Keras'
    default); ``approximate="tanh"`` is PyTorch's tanh approximation. Any shape."""

    def __init__(self, approximate: str = "none", name: str | None = None,
                 trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        if isinstance(approximate, bool):  # Keras spells it approximate=True/False
            approximate = "tanh" if approximate else "none"
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU approximate must be 'none' (exact) or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def _forward(self, x, out):
        functional.gelu_forward(x, self.approximate == "tanh", out)

    def _backward(self, dout, x, dx):
        functional.gelu_backward(dout, x, self.approximate == "tanh", dx)

    def get_config(self):
        return {**super().get_config(), "approximate": self.approximate}


# ---- activation= on Conv2D and Dense ------------------------------------------------------------
SEPARATE_ACTIVATIONS = {
    "tanh": Tanh,
    "leaky_relu": lambda: LeakyReLU(0.2),  # Keras' activations.leaky_relu slope
    "elu": ELU,
    "gelu": GELU,
}
"""Names Conv2D/Dense accept beyond the kernels' fused ones: the layer runs its kernel
without activation, then this activation layer on the result."""

_ALIASES = {"linear": None, None: None, "relu": "relu", "sigmoid": "sigmoid",
            **{name: name for name in SEPARATE_ACTIVATIONS}}


def activation_name(activation, layer) -> str | None:
    """The ``activation=`` of Conv2D/Dense as a name: None, a fused one of the kernel
    contract ("relu", "sigmoid") or one of SEPARATE_ACTIVATIONS; a ValueError otherwise."""
    key = activation.lower() if isinstance(activation, str) else activation
    if key in _ALIASES:
        return _ALIASES[key]
    kind = type(layer).__name__
    if key == "softmax":
        raise ValueError(f"{kind}(activation='softmax') is not fused: add a fastcnn.Softmax() "
                         "layer after it (or leave logits and let predict softmax them)")
    known = [name for name in _ALIASES if name is not None]
    raise ValueError(f"{kind} activation must be None or one of {', '.join(map(repr, known))}, "
                     f"got {activation!r}")


def separate_activation(name: str | None) -> Layer | None:
    """The activation layer a Conv2D/Dense runs after its kernel for ``name``, or None when
    the kernel applies it itself (None, and contract.ACTIVATIONS)."""
    if name in ACTIVATIONS:
        return None
    return SEPARATE_ACTIVATIONS[name]()
