"""MaxPool2D and AvgPool2D: no padding, floor division like PyTorch's defaults."""

from __future__ import annotations

import numpy as np

from .. import functional
from ..kernels.contract import conv_output_size
from .base import Layer


class _Pool2D(Layer):
    def __init__(self, kernel_size=2, stride=None, name: str | None = None,
                 trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.kernel_size = self._square(kernel_size, "kernel_size")
        self.stride = self._square(stride, "stride") if stride is not None else self.kernel_size

    def _square(self, value, what) -> int:
        """An int >= 1, or a pair of equal ones: the pooling kernels take square windows."""
        pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
        if len(pair) != 2 or any(isinstance(v, bool) or int(v) != v or v < 1 for v in pair):
            raise ValueError(f"{type(self).__name__} {what} must be a whole number >= 1 or a pair "
                             f"of them, got {value!r}")
        if pair[0] != pair[1]:
            raise ValueError(f"{type(self).__name__} {what} {tuple(pair)}: the pooling kernels take "
                             f"square windows and one stride; use equal values")
        return int(pair[0])

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.describe()} expects (N, C, H, W) inputs, the previous layer "
                             f"gives (N, {', '.join(map(str, input_shape))})")
        c, h, w = input_shape
        oh = conv_output_size(h, self.kernel_size, self.stride, 0)
        ow = conv_output_size(w, self.kernel_size, self.stride, 0)
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.describe()} window {self.kernel_size} does not fit a {h}x{w} input")
        return (c, oh, ow)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "stride": self.stride}


class MaxPool2D(_Pool2D):
    """x (N, C, H, W) -> (N, C, OH, OW), the maximum of each window; remembers the argmax."""

    @property
    def fusable_pool(self) -> int:
        """The window, when a Conv2D before it may pool in its own pass (window = stride), else 0."""
        fits = self.kernel_size == self.stride and not getattr(self, "padding", 0)
        return self.kernel_size if fits else 0

    def forward(self, x, training=False):
        shape = (x.shape[0],) + self.output_shape
        out = self.workspace.get("out", shape)
        argmax = self.workspace.get("argmax", shape, dtype=np.int32)
        functional.maxpool2d_forward(x, self.kernel_size, self.stride, out, argmax)
        self._argmax = argmax
        return out

    def backward(self, dout, need_input_grad=True):
        if not need_input_grad:
            return None
        dx = self.workspace.get("dx", (dout.shape[0],) + self.input_shape)
        functional.maxpool2d_backward(dout, self._argmax, dx)
        return dx


class AvgPool2D(_Pool2D):
    """x (N, C, H, W) -> (N, C, OH, OW), the mean of each window."""

    def forward(self, x, training=False):
        out = self.workspace.get("out", (x.shape[0],) + self.output_shape)
        functional.avgpool2d_forward(x, self.kernel_size, self.stride, out)
        return out

    def backward(self, dout, need_input_grad=True):
        if not need_input_grad:
            return None
        dx = self.workspace.get("dx", (dout.shape[0],) + self.input_shape)
        functional.avgpool2d_backward(dout, self.kernel_size, self.stride, dx)
        return dx
