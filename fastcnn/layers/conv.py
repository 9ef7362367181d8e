"""Conv2D: convolution by im2col + GEMM, weights OIHW like torch.nn.Conv2d."""

from __future__ import annotations

from .. import init as initializers
from ..backend import get_backend
from ..kernels.contract import ACTIVATIONS, conv_output_size
from ..parameter import Parameter
from .base import Layer


def _pair_check(value, what):
    value = int(value)
    if value < 0 or (what != "padding" and value < 1):
        raise ValueError(f"Conv2D {what} must be {'>= 0' if what == 'padding' else '>= 1'}, got {value}")
    return value


class Conv2D(Layer):
    """2-D convolution.

    Input (N, in_channels, H, W) -> output (N, out_channels, OH, OW) with
    OH = (H + 2*padding - kernel_size) // stride + 1. Parameters ``weight``
    (out_channels, in_channels, k, k) and ``bias`` (out_channels,).
    ``activation`` (None, "relu", "sigmoid") is applied in the same kernel.
    ``init`` is an initializer, its name, or a fixed array for the weight.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, activation: str | None = None,
                 init="pytorch_default", bias_init=None, name: str | None = None,
                 trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.in_channels = _pair_check(in_channels, "in_channels")
        self.out_channels = _pair_check(out_channels, "out_channels")
        self.kernel_size = _pair_check(kernel_size, "kernel_size")
        self.stride = _pair_check(stride, "stride")
        self.padding = _pair_check(padding, "padding")
        self.use_bias = bool(bias)
        self.activation = activation
        self.init = initializers.get(init)
        default_bias = "pytorch_default" if self.init.name == "pytorch_default" else "zeros"
        self.bias_init = initializers.get(bias_init if bias_init is not None else default_bias)
        self.fused_activation = None  # set by Sequential when a ReLU/Sigmoid layer follows

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"{self.describe()} expects (N, {self.in_channels}, H, W) inputs; "
                             f"the previous layer gives (N, {', '.join(map(str, input_shape))})")
        c, h, w = input_shape
        oh = conv_output_size(h, self.kernel_size, self.stride, self.padding)
        ow = conv_output_size(w, self.kernel_size, self.stride, self.padding)
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.describe()} with kernel {self.kernel_size}, padding {self.padding} "
                             f"does not fit a {h}x{w} input")
        return (self.out_channels, oh, ow)

    def create_parameters(self, rng):
        k = self.kernel_size
        shape = (self.out_channels, self.in_channels, k, k)
        fan_in, fan_out = self.in_channels * k * k, self.out_channels * k * k
        self.params["weight"] = Parameter(self.init(shape, fan_in, fan_out, rng))
        if self.use_bias:
            self.params["bias"] = Parameter(self.bias_init((self.out_channels,), fan_in, fan_out, rng))

    def _activation(self):
        return self.activation or self.fused_activation

    def forward(self, x, training=False):
        backend = get_backend()
        n = x.shape[0]
        k = self.kernel_size
        _, oh, ow = self.output_shape
        cols = self.workspace.get("cols", (n, self.in_channels * k * k, oh * ow))
        out = self.workspace.get("out", (n,) + self.output_shape)
        bias = self.params["bias"].data if self.use_bias else None
        activation = self._activation()
        backend.conv2d_forward(x, self.params["weight"].data, bias, self.stride, self.padding,
                               activation, cols, out)
        self._saved = (cols, out, activation)
        return out

    def backward(self, dout, need_input_grad=True):
        if not self.trainable and not need_input_grad:
            return None
        backend = get_backend()
        cols, out, activation = self._saved
        n = dout.shape[0]
        weight = self.params["weight"]
        dx = self.workspace.get("dx", (n,) + self.input_shape) if need_input_grad else None
        dcols = self.workspace.get("dcols", cols.shape) if need_input_grad else None
        dweight = weight.grad_buffer() if self.trainable else self.workspace.get("dweight", weight.shape)
        dbias = None
        if self.use_bias:
            bias = self.params["bias"]
            dbias = bias.grad_buffer() if self.trainable else self.workspace.get("dbias", bias.shape)
        backend.conv2d_backward(dout, out, weight.data, cols, self.stride, self.padding, activation,
                                dx, dweight, dbias, dcols)
        return dx

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels,
                "out_channels": self.out_channels, "kernel_size": self.kernel_size,
                "stride": self.stride, "padding": self.padding, "bias": self.use_bias,
                "activation": self.activation, "init": self.init.get_config(),
                "bias_init": self.bias_init.get_config()}
