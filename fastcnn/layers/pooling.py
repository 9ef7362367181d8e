"""MaxPool2D, AvgPool2D (PyTorch's padding, floor division) and GlobalAveragePooling2D."""

from __future__ import annotations

import numpy as np

from .. import functional
from ..kernels.contract import conv_output_size
from .arguments import either
from .base import Layer


class _Pool2D(Layer):
    """Square windows of ``kernel_size`` (Keras: ``pool_size``) every ``stride`` pixels
    (Keras: ``strides``; default: the window), over the input padded by ``padding`` pixels
    on each side (at most kernel_size // 2, as PyTorch requires; "valid" is 0)."""

    def __init__(self, kernel_size=None, stride=None, padding=0, name: str | None = None,
                 trainable: bool = True, *, pool_size=None, strides=None):
        super().__init__(name=name, trainable=trainable)
        kind = type(self).__name__
        kernel_size = either(kind, "kernel_size", kernel_size, "pool_size", pool_size, 2)
        stride = either(kind, "stride", stride, "strides", strides)
        self.kernel_size = self._square(kernel_size, "kernel_size")
        self.stride = self._square(stride, "stride") if stride is not None else self.kernel_size
        self.padding = self._padding(padding)

    def _square(self, value, what) -> int:
        """An int >= 1, or a pair of equal ones: the pooling kernels take square windows."""
        pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
        if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                 or v < 1 for v in pair):
            raise ValueError(f"{type(self).__name__} {what} must be a whole number >= 1 or a pair "
                             f"of them, got {value!r}")
        if pair[0] != pair[1]:
            raise ValueError(f"{type(self).__name__} {what} {tuple(pair)}: the pooling kernels take "
                             f"square windows and one stride; use equal values")
        return int(pair[0])

    def _padding(self, padding) -> int:
        kind = type(self).__name__
        if isinstance(padding, str):
            if padding.lower() == "valid":
                return 0
            raise ValueError(f"{kind} padding {padding!r}: pass 'valid' or a number of pixels "
                             "(PyTorch's padding; Keras' 'same' pads unevenly, which the kernels do not)")
        pair = tuple(padding) if isinstance(padding, (tuple, list)) else (padding, padding)
        if len(pair) != 2 or pair[0] != pair[1] or any(
                isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in pair):
            raise ValueError(f"{kind} padding must be a whole number >= 0 (or a pair of equal "
                             f"ones), got {padding!r}")
        if pair[0] > self.kernel_size // 2:
            raise ValueError(f"{kind} padding {pair[0]} is more than half the window "
                             f"{self.kernel_size} (at most {self.kernel_size // 2}, as in PyTorch): "
                             "a window would hold nothing but padding")
        return int(pair[0])

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.describe()} expects (N, C, H, W) inputs, the previous layer "
                             f"gives (N, {', '.join(map(str, input_shape))})")
        c, h, w = input_shape
        oh = conv_output_size(h, self.kernel_size, self.stride, self.padding)
        ow = conv_output_size(w, self.kernel_size, self.stride, self.padding)
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.describe()} window {self.kernel_size} does not fit a {h}x{w} input")
        return (c, oh, ow)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "stride": self.stride,
                "padding": self.padding}


class MaxPool2D(_Pool2D):
    """x (N, C, H, W) -> (N, C, OH, OW), the maximum of each window (padding is -inf, never
    chosen); remembers the argmax. OH = (H + 2*padding - kernel_size) // stride + 1."""

    @property
    def fusable_pool(self) -> int:
        """The window, when a Conv2D before it may pool in its own pass (window = stride), else 0."""
        fits = self.kernel_size == self.stride and not self.padding
        return self.kernel_size if fits else 0

    def forward(self, x, training=False):
        shape = (x.shape[0],) + self.output_shape
        out = self.workspace.get("out", shape)
        argmax = self.workspace.get("argmax", shape, dtype=np.int32)
        if self.padding:
            functional.padded_maxpool2d_forward(x, self.kernel_size, self.stride, self.padding,
                                                out, argmax)
        else:
            functional.maxpool2d_forward(x, self.kernel_size, self.stride, out, argmax)
        self._argmax = argmax
        return out

    def backward(self, dout, need_input_grad=True):
        if not need_input_grad:
            return None
        dx = self.workspace.get("dx", (dout.shape[0],) + self.input_shape)
        functional.maxpool2d_backward(dout, self._argmax, dx)  # argmax indexes the unpadded plane
        return dx


class AvgPool2D(_Pool2D):
    """x (N, C, H, W) -> (N, C, OH, OW), the mean of each window; padded pixels are zeros
    that count in the divisor (PyTorch's count_include_pad=True, its default)."""

    def __init__(self, kernel_size=None, stride=None, padding=0, name: str | None = None,
                 trainable: bool = True, *, pool_size=None, strides=None,
                 count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, name, trainable, pool_size=pool_size,
                         strides=strides)
        if count_include_pad is not True:
            raise ValueError("AvgPool2D(count_include_pad=False) is not supported: the kernels "
                             "divide every window by kernel_size**2 (PyTorch's default)")

    def forward(self, x, training=False):
        out = self.workspace.get("out", (x.shape[0],) + self.output_shape)
        if self.padding:
            functional.padded_avgpool2d_forward(x, self.kernel_size, self.stride, self.padding, out)
        else:
            functional.avgpool2d_forward(x, self.kernel_size, self.stride, out)
        return out

    def backward(self, dout, need_input_grad=True):
        if not need_input_grad:
            return None
        dx = self.workspace.get("dx", (dout.shape[0],) + self.input_shape)
        if self.padding:
            functional.padded_avgpool2d_backward(dout, self.kernel_size, self.stride, self.padding,
                                                 dx)
        else:
            functional.avgpool2d_backward(dout, self.kernel_size, self.stride, dx)
        return dx


class GlobalAveragePooling2D(Layer):
    """x (N, C, H, W) -> (N, C), the mean of each channel's plane: Keras'
    GlobalAveragePooling2D, PyTorch's AdaptiveAvgPool2d(1) followed by flatten(1)."""

    aliases = ("GlobalAvgPool2D",)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.describe()} expects (N, C, H, W) inputs, the previous layer "
                             f"gives (N, {', '.join(map(str, input_shape))})")
        return (input_shape[0],)

    def forward(self, x, training=False):
        out = self.workspace.get("out", (x.shape[0],) + self.output_shape)
        functional.global_avgpool2d_forward(x, out)
        return out

    def backward(self, dout, need_input_grad=True):
        if not need_input_grad:
            return None
        dx = self.workspace.get("dx", (dout.shape[0],) + self.input_shape)
        functional.global_avgpool2d_backward(dout, dx)
        return dx
