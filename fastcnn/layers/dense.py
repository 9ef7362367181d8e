"""Dense (fully connected, weight (out, in) like torch.nn.Linear) and Flatten."""

from __future__ import annotations

import numpy as np

from .. import init as initializers
from .. import functional
from ..parameter import Parameter
from .base import Layer, activation_argument


class Dense(Layer):
    """x (N, in_features) -> act(x @ weight.T + bias) (N, out_features).

    Parameters ``weight`` (out_features, in_features), ``bias`` (out_features,).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 activation: str | None = None, init="pytorch_default", bias_init=None,
                 name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        activation = activation_argument(activation, self)
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(f"Dense needs in_features, out_features >= 1, got {in_features}, {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.use_bias = bool(bias)
        self.activation = activation
        self.init = initializers.get(init)
        default_bias = "pytorch_default" if self.init.name == "pytorch_default" else "zeros"
        self.bias_init = initializers.get(bias_init if bias_init is not None else default_bias)

    def compute_output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"{self.describe()} expects (N, {self.in_features}) inputs; the previous "
                             f"layer gives (N, {', '.join(map(str, input_shape))}) (add a Flatten?)")
        return (self.out_features,)

    def create_parameters(self, rng):
        shape = (self.out_features, self.in_features)
        self.params["weight"] = Parameter(self.init(shape, self.in_features, self.out_features, rng))
        if self.use_bias:
            self.params["bias"] = Parameter(
                self.bias_init((self.out_features,), self.in_features, self.out_features, rng))

    fuses_activation = True

    def forward(self, x, training=False):
        return self.forward_fused(x, training)

    def forward_fused(self, x, training=False, activation=None, pool: int = 0, keep: bool = True):
        """x (N, F) -> act(x @ weight.T + bias) (N, U), with ``activation`` (a contract name)
        when the layer has none of its own; ``pool`` and ``keep`` are unused (see Conv2D)."""
        out = self.workspace.get("out", (x.shape[0], self.out_features))
        bias = self.params["bias"].data if self.use_bias else None
        activation = self.activation or activation
        functional.dense_forward(x, self.params["weight"].data, bias, activation, out)
        self._saved = (x, out, activation)
        return out

    def backward(self, dout, need_input_grad=True):
        if not self.trainable and not need_input_grad:
            return None
        x, out, activation = self._saved
        weight = self.params["weight"]
        dx = self.workspace.get("dx", x.shape) if need_input_grad else None
        dweight = weight.grad_buffer() if self.trainable else self.workspace.get("dweight", weight.shape)
        dbias = None
        if self.use_bias:
            bias = self.params["bias"]
            dbias = bias.grad_buffer() if self.trainable else self.workspace.get("dbias", bias.shape)
        functional.dense_backward(dout, out, x, weight.data, activation, dx, dweight, dbias)
        return dx

    def get_config(self):
        return {**super().get_config(), "in_features": self.in_features,
                "out_features": self.out_features, "bias": self.use_bias,
                "activation": self.activation, "init": self.init.get_config(),
                "bias_init": self.bias_init.get_config()}


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), C order like torch.flatten(x, 1)."""

    preserves_scores = True

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        return x.reshape(x.shape[0], self.output_shape[0])

    def backward(self, dout, need_input_grad=True):
        return dout.reshape((dout.shape[0],) + self.input_shape) if need_input_grad else None
