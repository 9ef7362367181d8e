"""Dense (fully connected, weight (out, in) like torch.nn.Linear) and Flatten."""

from __future__ import annotations

import numpy as np

from .. import init as initializers
from .. import functional
from ..parameter import Parameter
from .activations import activation_name, separate_activation
from .arguments import count, either
from .base import Layer


class Dense(Layer):
    """x (N, in_features) -> act(x @ weight.T + bias) (N, out_features).

    Parameters ``weight`` (out_features, in_features), ``bias`` (out_features,).
    PyTorch's spelling ``Dense(in_features, out_features)`` and Keras' ``Dense(units)``
    (or ``units=``, ``use_bias=``) both work: with one positional argument the input
    features come from the previous layer's output at build time, as they do with
    ``in_features=None``. ``activation`` "relu" or "sigmoid" is applied in the same kernel;
    "tanh", "leaky_relu" (slope 0.2, as Keras), "elu" and "gelu" run right after it.
    """

    def __init__(self, in_features: int | None = None, out_features: int | None = None,
                 bias: bool | None = None, activation: str | None = None, init="pytorch_default",
                 bias_init=None, name: str | None = None, trainable: bool = True, *,
                 units: int | None = None, use_bias: bool | None = None):
        super().__init__(name=name, trainable=trainable)
        if out_features is None and units is None:  # Keras: Dense(units)
            in_features, out_features = None, in_features
        out_features = either("Dense", "out_features", out_features, "units", units)
        if out_features is None:
            raise TypeError("Dense needs its output size: Dense(units) as in Keras or "
                            "Dense(in_features, out_features) as in PyTorch")
        self.activation = activation_name(activation, self)
        self.in_features = None if in_features is None else count("Dense", "in_features", in_features)
        self.out_features = count("Dense", "out_features", out_features)
        self.use_bias = bool(either("Dense", "bias", bias, "use_bias", use_bias, True))
        self.init = initializers.get(init)
        default_bias = "pytorch_default" if self.init.name == "pytorch_default" else "zeros"
        self.bias_init = initializers.get(bias_init if bias_init is not None else default_bias)
        self._after = separate_activation(self.activation)

    def build(self, input_shape, rng=None):
        """Takes in_features from ``input_shape`` (F,) when it was not given."""
        if self.in_features is None and len(input_shape) == 1:
            self.in_features = int(input_shape[0])
        output_shape = super().build(input_shape, rng)
        if self._after is not None:
            self._after.build(output_shape)
        return output_shape

    def compute_output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"{self.describe()} expects (N, {self.in_features or 'F'}) inputs; the "
                             f"previous layer gives (N, {', '.join(map(str, input_shape))}) "
                             "(add a Flatten?)")
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
        activation = None if self._after is not None else self.activation or activation
        functional.dense_forward(x, self.params["weight"].data, bias, activation, out)
        self._saved = (x, out, activation)
        return out if self._after is None else self._after.forward(out, training)

    def backward(self, dout, need_input_grad=True):
        if not self.trainable and not need_input_grad:
            return None
        x, out, activation = self._saved
        if self._after is not None:
            dout = self._after.backward(dout)
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
