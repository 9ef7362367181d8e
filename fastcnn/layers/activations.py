"""Element-wise activations (ReLU, Sigmoid) and Softmax over the class axis."""

from __future__ import annotations

from .. import functional
from .base import Layer


class _Activation(Layer):
    """Shape-preserving layer; backward uses the forward output."""

    kernel = ""  # "relu", "sigmoid" or "softmax": the contract's <kernel>_forward/_backward

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


class Softmax(_Activation):
    """(N, L) -> (N, L) probabilities. Before a cross-entropy loss, Sequential
    trains on the logits with the fused softmax-cross-entropy kernel instead."""

    kernel = "softmax"

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"Softmax expects (N, L) inputs, the previous layer gives "
                             f"(N, {', '.join(map(str, input_shape))}) (add a Flatten?)")
        return input_shape
