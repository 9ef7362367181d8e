"""Dropout: zeroes a fraction p of activations while training, scaling the rest by 1/(1-p)."""

from __future__ import annotations

from .. import functional
from ..errors import InputError
from .base import Layer


class Dropout(Layer):
    """Any shape. The mask is drawn inside the kernel from (seed, element index), so
    every backend draws the same mask; the seed advances on each training call."""

    training_differs = True
    preserves_scores = True

    def __init__(self, p: float = 0.5, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"Dropout probability must be in [0, 1), got {p}")
        self.p = float(p)
        self.seed = 0
        self.calls = 0

    def create_parameters(self, rng):
        self.seed = int(rng.integers(0, 2**63 - 1))

    def next_seed(self) -> int:
        self.calls += 1
        return (self.seed + self.calls * 0x2545F4914F6CDD1D) % 2**64

    def forward(self, x, training=False):
        self._active = training and self.p > 0
        if not self._active:
            return x
        out = self.workspace.get("out", x.shape)
        mask = self.workspace.get("mask", x.shape)
        functional.dropout_forward(x, self.p, self.next_seed(), out, mask)
        self._mask = mask
        return out

    def backward(self, dout, need_input_grad=True):
        if not need_input_grad:
            return None
        if not self._active:
            return dout
        dx = self.workspace.get("dx", dout.shape)
        functional.dropout_backward(dout, self._mask, dx)
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

