"""Conv2D: convolution by im2col + GEMM, weights OIHW like torch.nn.Conv2d."""

from __future__ import annotations

import numpy as np

from .. import init as initializers
from .. import functional
from ..kernels.contract import conv_output_size
from ..parameter import Parameter
from .activations import activation_name, separate_activation
from .arguments import count, either
from .base import Layer


def _pair(value, what, minimum):
    """An int or a pair (h, w) of ints -> (h, w)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"Conv2D {what} must be an int or a pair (h, w), got {value!r}")
        return count("Conv2D", what, value[0], minimum), count("Conv2D", what, value[1], minimum)
    value = count("Conv2D", what, value, minimum)
    return value, value


def _one_for_both_axes(value, what, minimum):
    """The kernels take one stride and one padding for both axes: (h, w) must agree."""
    h, w = _pair(value, what, minimum)
    if h != w:
        raise ValueError(f"Conv2D {what} {tuple(value)}: fastcnn's kernels take one {what} for both "
                         f"axes; use equal values (e.g. {what}={h})")
    return h


def _padding(padding, kernel_h, kernel_w, stride):
    """padding as an int: "valid" is 0; "same" keeps H and W (odd square kernels, stride 1)."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return 0
        if mode != "same":
            raise ValueError(f"Conv2D padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
        if stride != 1:
            raise ValueError(f"Conv2D padding='same' needs stride 1 (got {stride}): with larger strides "
                             "Keras pads unevenly, which the kernels do not; pass an int padding")
        if kernel_h != kernel_w or kernel_h % 2 == 0:
            raise ValueError(f"Conv2D padding='same' needs an odd square kernel, got {kernel_h}x{kernel_w} "
                             "(it would need uneven padding); pass an int padding")
        return (kernel_h - 1) // 2
    return _one_for_both_axes(padding, "padding", 0)


class Conv2D(Layer):
    """2-D convolution.

    Input (N, in_channels, H, W) -> output (N, out_channels, OH, OW) with
    OH = (H + 2*padding - KH) // stride + 1 (the same for W). ``kernel_size`` is an
    int or a pair (KH, KW); ``stride`` and ``padding`` one int for both axes (a pair
    of equal values is accepted); ``padding`` may also be "valid" (0) or "same"
    (output size = input size; odd square kernels, stride 1). Parameters ``weight``
    (out_channels, in_channels, KH, KW) and ``bias`` (out_channels,).
    ``activation`` "relu" or "sigmoid" is applied in the same kernel; "tanh",
    "leaky_relu" (slope 0.2, as Keras), "elu" and "gelu" run right after it.
    ``init`` is an initializer, its name, or a fixed array for the weight.

    PyTorch's spelling ``Conv2D(in_channels, out_channels, kernel_size)`` and Keras'
    ``Conv2D(filters, kernel_size, strides=, use_bias=)`` both work: with two positional
    arguments (or ``filters=``) the input channels come from the previous layer's output
    at build time, as they do with ``in_channels=None``.
    """

    def __init__(self, in_channels: int | None = None, out_channels: int | None = None,
                 kernel_size=None, stride=None, padding=0, bias: bool | None = None,
                 activation: str | None = None, init="pytorch_default", bias_init=None,
                 name: str | None = None, trainable: bool = True, *, filters: int | None = None,
                 strides=None, use_bias: bool | None = None):
        super().__init__(name=name, trainable=trainable)
        if kernel_size is None and filters is None:  # Keras: Conv2D(filters, kernel_size)
            in_channels, out_channels, kernel_size = None, in_channels, out_channels
        elif out_channels is None and filters is None:  # Conv2D(32, kernel_size=3)
            in_channels, out_channels = None, in_channels
        elif filters is not None and kernel_size is None and out_channels is None:
            in_channels, kernel_size = None, in_channels  # Conv2D(3, filters=32)
        out_channels = either("Conv2D", "out_channels", out_channels, "filters", filters)
        if out_channels is None or kernel_size is None:
            raise TypeError("Conv2D needs its output channels and kernel size: Conv2D(filters, "
                            "kernel_size) as in Keras or Conv2D(in_channels, out_channels, "
                            "kernel_size) as in PyTorch")
        self.activation = activation_name(activation, self)
        self.in_channels = None if in_channels is None else count("Conv2D", "in_channels", in_channels, 1)
        self.out_channels = count("Conv2D", "out_channels", out_channels, 1)
        self.kernel_h, self.kernel_w = _pair(kernel_size, "kernel_size", 1)
        self.stride = _one_for_both_axes(either("Conv2D", "stride", stride, "strides", strides, 1),
                                         "stride", 1)
        self.padding = _padding(padding, self.kernel_h, self.kernel_w, self.stride)
        self.use_bias = bool(either("Conv2D", "bias", bias, "use_bias", use_bias, True))
        self.init = initializers.get(init)
        default_bias = "pytorch_default" if self.init.name == "pytorch_default" else "zeros"
        self.bias_init = initializers.get(bias_init if bias_init is not None else default_bias)
        self._after = separate_activation(self.activation)

    def build(self, input_shape, rng=None):
        """Takes in_channels from ``input_shape`` (C, H, W) when it was not given."""
        if self.in_channels is None and len(input_shape) == 3:
            self.in_channels = int(input_shape[0])
        output_shape = super().build(input_shape, rng)
        if self._after is not None:
            self._after.build(output_shape)
        return output_shape

    @property
    def kernel_size(self):
        """An int for a square kernel, else (KH, KW)."""
        return self.kernel_h if self.kernel_h == self.kernel_w else (self.kernel_h, self.kernel_w)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"{self.describe()} expects (N, {self.in_channels or 'C'}, H, W) inputs; "
                             f"the previous layer gives (N, {', '.join(map(str, input_shape))})")
        c, h, w = input_shape
        oh = conv_output_size(h, self.kernel_h, self.stride, self.padding)
        ow = conv_output_size(w, self.kernel_w, self.stride, self.padding)
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.describe()} with kernel {self.kernel_h}x{self.kernel_w}, padding "
                             f"{self.padding} does not fit a {h}x{w} input")
        return (self.out_channels, oh, ow)

    def create_parameters(self, rng):
        area = self.kernel_h * self.kernel_w
        shape = (self.out_channels, self.in_channels, self.kernel_h, self.kernel_w)
        fan_in, fan_out = self.in_channels * area, self.out_channels * area
        self.params["weight"] = Parameter(self.init(shape, fan_in, fan_out, rng))
        if self.use_bias:
            self.params["bias"] = Parameter(self.bias_init((self.out_channels,), fan_in, fan_out, rng))

    fuses_activation = True
    fuses_pool = True

    def forward(self, x, training=False):
        return self.forward_fused(x, training)

    def forward_fused(self, x, training=False, activation=None, pool: int = 0, keep: bool = True):
        """x (N, C, H, W) -> act(conv(x)) (N, O, OH, OW), with ``activation`` (a contract name)
        when the layer has none of its own, and then, with ``pool`` > 0, its max pool of
        window and stride ``pool`` (N, O, OH // pool, OW // pool) in the same pass. ``keep``
        False (no backward pass follows) skips keeping the im2col columns, and with a fused
        pool the full-resolution output and the pool's argmax (the kernel keeps them in
        cache, where it can). On a backend that rebuilds the columns in its backward pass
        (contract.FROM_INPUT) ``keep`` keeps a reference to x instead, as PyTorch's autograd
        does: x must not change before backward(); with a fused pool it then keeps the
        pooled output (the layer's own buffer, which the next layer must not write) instead
        of the full-resolution one. With an activation of its own that the
        kernels do not fuse (tanh, ...), the convolution runs without one, then that
        activation, then the pool."""
        n = x.shape[0]
        _, oh, ow = self.output_shape
        # a backend that rebuilds the columns in its backward pass keeps x instead of them
        kept_input = x if keep and functional.rebuilds_columns() else None
        cols = self.workspace.get("cols", (n, self.in_channels * self.kernel_h * self.kernel_w,
                                           oh * ow)) if keep and kept_input is None else None
        bias = self.params["bias"].data if self.use_bias else None
        activation = None if self._after is not None else self.activation or activation
        fused = pool and self._after is None
        pooled_only = fused and not keep
        # a fused backward pass from the input reads the pooled output, not the full one
        out = None if pooled_only or (fused and kept_input is not None) else \
            self.workspace.get("out", (n,) + self.output_shape)
        if pool:
            shape = (n, self.out_channels, oh // pool, ow // pool)
            pooled = self.workspace.get("pooled", shape)
            argmax = None if pooled_only else self.workspace.get("pool argmax", shape,
                                                                 dtype=np.int32)
        if fused:
            functional.conv2d_maxpool_forward(x, self.params["weight"].data, bias, self.stride,
                                              self.padding, activation, pool, cols, out, pooled,
                                              argmax)
            self._saved = (cols, kept_input, pooled if out is None else out, activation, argmax)
            return pooled
        functional.conv2d_forward(x, self.params["weight"].data, bias, self.stride, self.padding,
                                  activation, cols, out)
        self._saved = (cols, kept_input, out, activation, argmax if pool else None)
        activated = out if self._after is None else self._after.forward(out, training)
        if not pool:
            return activated
        functional.maxpool2d_forward(activated, pool, pool, pooled, argmax)
        return pooled

    def backward(self, dout, need_input_grad=True):
        if not self.trainable and not need_input_grad:
            return None
        cols, x, out, activation, pool_argmax = self._saved
        if cols is None and x is None:
            raise RuntimeError(f"{self.describe()}: backward() needs a forward pass that kept its "
                               "inputs (model.forward / train_step), not predict or evaluate")
        # after a fused forward pass dout is the max pool's output gradient
        n = dout.shape[0]
        weight = self.params["weight"]
        dx = self.workspace.get("dx", (n,) + self.input_shape) if need_input_grad else None
        dcols = self.workspace.get("dcols", cols.shape) if need_input_grad and x is None else None
        dweight = weight.grad_buffer() if self.trainable else self.workspace.get("dweight", weight.shape)
        dbias = None
        if self.use_bias:
            bias = self.params["bias"]
            dbias = bias.grad_buffer() if self.trainable else self.workspace.get("dbias", bias.shape)
        scalars = (self.stride, self.padding, activation, dx, dweight, dbias)
        if pool_argmax is not None and self._after is None:
            if x is not None:  # out is the pooled output (see forward_fused)
                functional.conv2d_maxpool_backward_from_input(dout, pool_argmax, out, weight.data,
                                                              x, *scalars)
                return dx
            functional.conv2d_maxpool_backward(dout, pool_argmax, out, weight.data, cols,
                                               *scalars, dcols, self.workspace.get("dout",
                                                                                   out.shape))
            return dx
        if pool_argmax is not None:
            pooled_grad, dout = dout, self.workspace.get("dout", out.shape)
            functional.maxpool2d_backward(pooled_grad, pool_argmax, dout)
        if self._after is not None:
            dout = self._after.backward(dout)
        if x is None:
            functional.conv2d_backward(dout, out, weight.data, cols, *scalars, dcols)
        else:
            functional.conv2d_backward_from_input(dout, out, weight.data, x, *scalars)
        return dx

    def get_config(self):
        kernel = self.kernel_size
        return {**super().get_config(), "in_channels": self.in_channels,
                "out_channels": self.out_channels,
                "kernel_size": list(kernel) if isinstance(kernel, tuple) else kernel,
                "stride": self.stride, "padding": self.padding, "bias": self.use_bias,
                "activation": self.activation, "init": self.init.get_config(),
                "bias_init": self.bias_init.get_config()}
