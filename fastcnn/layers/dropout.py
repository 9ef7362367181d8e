"""Dropout (single activations) and Dropout2d (whole channels): zero a fraction p while
training, scaling the rest by 1/(1-p)."""

from __future__ import annotations

import numbers

from .. import functional
from ..errors import InputError
from .arguments import either
from .base import Layer


class Dropout(Layer):
    """Any shape. The mask is drawn inside the kernel from (seed, element index), so
    every backend draws the same mask; the seed advances on each training call.
    ``p`` is PyTorch's name, ``rate`` Keras'."""

    training_differs = True
    preserves_scores = True

    def __init__(self, p: float | None = None, name: str | None = None, trainable: bool = True,
                 *, rate: float | None = None):
        super().__init__(name=name, trainable=trainable)
        p = either(type(self).__name__, "p", p, "rate", rate, 0.5)
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) < 1.0:
            raise ValueError(f"{type(self).__name__} probability must be a number in [0, 1), got {p!r}")
        self.p = float(p)
        self.seed = 0
        self.calls = 0

    @property
    def rate(self) -> float:
        """Keras' name for p."""
        return self.p

    def create_parameters(self, rng):
        self.seed = int(rng.integers(0, 2**63 - 1))

    def next_seed(self) -> int:
        self.calls += 1
        return (self.seed + self.calls * 0x2545F4914F6CDD1D) % 2**64

    def _mask_shape(self, x) -> tuple:
        return tuple(x.shape)

    def _drop(self, x, out, mask) -> None:
        functional.dropout_forward(x, self.p, self.next_seed(), out, mask)

    def _scale(self, dout, mask, dx) -> None:
        functional.dropout_backward(dout, mask, dx)

    def forward(self, x, training=False):
        self._active = training and self.p > 0
        if not self._active:
            return x
        out = self.workspace.get("out", x.shape)
        mask = self.workspace.get("mask", self._mask_shape(x))
        self._drop(x, out, mask)
        self._mask = mask
        return out

    def backward(self, dout, need_input_grad=True):
        if not need_input_grad:
            return None
        if not self._active:
            return dout
        dx = self.workspace.get("dx", dout.shape)
        self._scale(dout, self._mask, dx)
        return dx

    def get_config(self):
        return {**super().get_config(), "p": self.p}

    def get_state(self) -> dict:
        """Where the mask sequence stands, saved with the model so training resumes identically."""
        return {"seed": self.seed, "calls": self.calls}

    def set_state(self, state: dict) -> None:
        values = {key: state.get(key) for key in ("seed", "calls")}
        wrong = {key: value for key, value in values.items()
                 if isinstance(value, bool) or not isinstance(value, int) or value < 0}
        if wrong or set(state) - set(values):
            raise InputError(f"{self.describe()} state needs whole numbers seed, calls >= 0 and "
                             f"nothing else; got {state}")
        self.seed, self.calls = values["seed"], values["calls"]


class Dropout2d(Dropout):
    """x (N, C, H, W) (or (N, C, L)): zeroes whole channels, each (n, c) plane with
    probability p, as torch.nn.Dropout2d and Keras' SpatialDropout2D. The per-channel mask
    (N, C) comes from the same counter-based hash as Dropout's, indexed by n*C + c."""

    aliases = ("SpatialDropout2D",)

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"{self.describe()} expects (N, C, H, W) inputs (whole channels to "
                             f"drop), the previous layer gives (N, {', '.join(map(str, input_shape))})")
        return input_shape

    def _mask_shape(self, x) -> tuple:
        return tuple(x.shape[:2])

    def _drop(self, x, out, mask) -> None:
        functional.dropout2d_forward(x, self.p, self.next_seed(), out, mask)

    def _scale(self, dout, mask, dx) -> None:
        functional.dropout2d_backward(dout, mask, dx)
