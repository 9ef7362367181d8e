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
    where that figure was published. ``loss``: a name or a config dict
    ({"name": "cross_entropy", "label_smoothing": 0.1}). ``schedule``: a :mod:`fastcnn.schedules`
    class name and its arguments ({"name": "OneCycleLR"}: ``lr`` is its peak, it spans the
    whole fit; empty for none); ``augment``: :class:`fastcnn.augment.RandomAffine`'s
    arguments for the training batches. ``steps_per_epoch``: train on only the first that
    many batches of each epoch. ``model_args``: keyword arguments of the zoo constructor
    (an ablation's network)."""

    model: str
    dataset: str
    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    split: str
    loss: str | dict = "cross_entropy"
    optimizer_args: dict = field(default_factory=dict)
    reported: dict = field(default_factory=dict)
    source: str = ""
    notes: str = ""
    protocol: str = "article"
    iterations: int | None = None
    eval_batch_size: int | None = None
    reported_sources: dict = field(default_factory=dict)
    schedule: dict = field(default_factory=dict)
    augment: dict = field(default_factory=dict)
    steps_per_epoch: int | None = None
    model_args: dict = field(default_factory=dict)

    def make_optimizer(self, lr: float | None = None):
        """A fresh optimizer of this recipe (``lr`` overrides the recipe's rate)."""
        return optim.get({"name": self.optimizer, **self.optimizer_args},
                         lr=self.lr if lr is None else lr)

    def make_schedule(self):
        """A fresh schedule of this recipe for compile(schedule=...), or None."""
        if not self.schedule:
            return None
        from ..schedules import SCHEDULES

        arguments = dict(self.schedule)
        name = arguments.pop("name")
        if name not in SCHEDULES:
            raise ValueError(f"unknown schedule {name!r}; fastcnn has: {', '.join(SCHEDULES)}")
        if name == "OneCycleLR":
            arguments.setdefault("max_lr", self.lr)
        return SCHEDULES[name](**arguments)

    def make_augment(self, seed: int | None = None):
        """A fresh RandomAffine of this recipe (seeded), or None."""
        if not self.augment:
            return None
        from ..augment import RandomAffine

        return RandomAffine(**self.augment, seed=seed)

    def compile(self, model, lr: float | None = None):
        """Compile ``model`` with this recipe's optimizer, loss and schedule."""
        return model.compile(self.make_optimizer(lr), self.loss, schedule=self.make_schedule())

    def fit_arguments(self, seed: int | None = None) -> dict:
        """What ``model.fit`` takes from this recipe: epochs, batch size, steps per epoch
        and the augmentation (seeded with ``seed``)."""
        arguments = {"epochs": self.epochs, "batch_size": self.batch_size,
                     "augment": self.make_augment(seed)}
        if self.steps_per_epoch:
            arguments["steps_per_epoch"] = self.steps_per_epoch
        return arguments

    def describe(self) -> str:
        """One line: optimizer, rate, schedule, loss, batch size, epochs or iterations."""
        from ..wording import count

        loss = dict(self.loss) if isinstance(self.loss, dict) else {"name": self.loss}
        parts = [f"{self.optimizer} lr {self.lr:g}"]
        if self.schedule:
            schedule = dict(self.schedule)
            parts.append(schedule.pop("name") + "(" +
                         ", ".join(f"{key}={value:g}" if isinstance(value, float) else
                                   f"{key}={value}" for key, value in schedule.items()) + ")")
        parts.append(loss.pop("name").replace("_", "-") +
                     "".join(f", {key.replace('_', ' ')} {value:g}" for key, value in loss.items()))
        parts.append(f"batch {self.batch_size}")
        parts.append(count(self.iterations, "iteration") if self.iterations else
                     count(self.epochs, "epoch") +
                     (f" of {count(self.steps_per_epoch, 'batch')}" if self.steps_per_epoch else ""))
        return ", ".join(parts)

    def replace(self, **overrides) -> "Recipe":
        """A copy with some fields changed; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})
