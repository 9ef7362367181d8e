"""A tutorial's training recipe: optimizer, learning rate, batch size, epochs, data split,
and the figures the article reported, as defaults a user can override."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .. import optim


@dataclass(frozen=True)
class Recipe:
    model: str
    dataset: str
    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    split: str
    loss: str = "cross_entropy"
    optimizer_args: dict = field(default_factory=dict)
    reported: dict = field(default_factory=dict)
    source: str = ""
    notes: str = ""

    def make_optimizer(self, lr: float | None = None):
        """A fresh optimizer of this recipe (``lr`` overrides the recipe's rate)."""
        return optim.get({"name": self.optimizer, **self.optimizer_args},
                         lr=self.lr if lr is None else lr)

    def replace(self, **overrides) -> "Recipe":
        """A copy with some fields changed; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})
