"""A tutorial's training recipe: optimizer, learning rate, batch size, epochs, data split,
and the figures the article reported (each with where it comes from), as defaults a user
can override."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .. import optim


@dataclass(frozen=True)
class Recipe:
    """``iterations``: train on that many batches of ``batch_size`` drawn with replacement
    (a tutorial's ``np.random.randint`` loop) instead of ``epochs`` passes over the data.
    ``eval_batch_size``: the batch the tutorial evaluated in (0: the whole set at once,
    which matters when a layer normalises over the batch). ``protocol`` names which of
    an article's protocols this is; ``reported_sources`` says, per key of ``reported``,
    where that figure was published."""

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
    protocol: str = "article"
    iterations: int | None = None
    eval_batch_size: int | None = None
    reported_sources: dict = field(default_factory=dict)

    def make_optimizer(self, lr: float | None = None):
        """A fresh optimizer of this recipe (``lr`` overrides the recipe's rate)."""
        return optim.get({"name": self.optimizer, **self.optimizer_args},
                         lr=self.lr if lr is None else lr)

    def replace(self, **overrides) -> "Recipe":
        """A copy with some fields changed; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})
