"""Learning-rate schedules with PyTorch's names and arguments: StepLR, CosineAnnealingLR
(with an optional linear warm-up) and OneCycleLR.

PyTorch-style loop: ``scheduler = StepLR(optimizer, step_size=10)``, then
``scheduler.step()`` after each epoch (or each batch for OneCycleLR), as in PyTorch.

Keras-style: give the schedule without an optimizer to ``compile`` (or put it in fit's
``callbacks``); fit binds it to the model's optimizer and steps it after every batch
(``interval="batch"``, OneCycleLR's default) or every epoch (``interval="epoch"``, the
others' default), and logs the rate at each epoch's end as ``learning_rate`` (for a
per-epoch schedule, the rate the epoch used)::

    model.compile(fastcnn.optim.SGD(0.1, momentum=0.9), "cross_entropy",
                  schedule=fastcnn.schedules.OneCycleLR(max_lr=0.1))
    model.fit(x, y, epochs=10)          # total_steps = 10 epochs x batches per epoch

A schedule with a last step (CosineAnnealingLR's ``T_max``, OneCycleLR's ``total_steps``)
stepped past it raises InputError (PyTorch's OneCycleLR raises too; its cosine would
start a second cycle, which is never what a run that outlived its schedule wants); fit
checks that before its first batch.

``get_config`` / :func:`from_config` and ``state_dict`` / ``load_state_dict`` are what
``model.save`` writes beside the optimizer, so that a loaded model's fit goes on with the
same rates as a run that never stopped.
"""

from __future__ import annotations

import math
import numbers

from .callbacks import Callback
from .errors import InputError

INTERVALS = ("batch", "epoch")


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{what} must be a whole number >= 1, got {value!r}")
    return int(value)


def _real(value, what: str, low: float = 0.0, high: float | None = None,
          low_open: bool = False, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise InputError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if (value <= low if low_open else value < low) or \
            (high is not None and (value >= high if high_open else value > high)):
        raise InputError(f"{what} must be in {'(' if low_open else '['}{low:g}, "
                         f"{'inf' if high is None else f'{high:g}'}{')' if high_open else ']'}, "
                         f"got {value}")
    return value


class LRScheduler(Callback):
    """Base class. ``step()`` moves to the next step and sets the optimizer's rate to
    ``rate_at(last_epoch)`` (PyTorch's counter name: it counts steps, batches or epochs).
    Subclasses define ``rate_at`` and, when they end, ``last_step``."""

    default_interval = "epoch"
    config_keys: tuple = ()  # the constructor's arguments get_config returns, beside interval

    def __init__(self, optimizer=None, interval: str | None = None):
        interval = self.default_interval if interval is None else interval
        if interval not in INTERVALS:
            raise InputError(f"interval must be 'batch' or 'epoch', got {interval!r}")
        self.interval = interval
        self.optimizer = None
        self.base_lr = None
        self.last_epoch = -1
        if optimizer is not None:
            self.bind(optimizer)

    # ---- the PyTorch interface ----------------------------------------------------------
    def bind(self, optimizer) -> "LRScheduler":
        """Attach to ``optimizer`` (its current rate is the base rate) and set step 0's rate."""
        from .optim import Optimizer

        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"a schedule drives a fastcnn optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = -1
        self._prepare()
        self.step()
        return self

    def _prepare(self) -> None:
        """Check and derive what depends on the optimizer (before step 0)."""

    @property
    def last_step(self) -> int | None:
        """The last step this schedule defines, or None when it goes on for ever."""
        return None

    def rate_at(self, step: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        """The next step's rate into the optimizer; InputError past the last step."""
        if self.optimizer is None:
            raise RuntimeError(f"{type(self).__name__} has no optimizer: pass it one, or give "
                               "the schedule to model.compile(..., schedule=...)")
        last = self.last_step
        if last is not None and self.last_epoch + 1 > last:
            raise InputError(
                f"{type(self).__name__} was stepped past its last step ({last}): "
                f"{self._length_advice()}")
        self.last_epoch += 1
        rate = self.rate_at(self.last_epoch)
        if not (rate >= 0 and math.isfinite(rate)):
            raise InputError(f"{type(self).__name__} gave the learning rate {rate} at step "
                             f"{self.last_epoch}")
        # set directly: a schedule may reach a rate of 0, which the optimizer's own
        # argument check refuses as a user's setting
        self.optimizer.lr = rate

    def _length_advice(self) -> str:
        return "make the schedule as long as the training, or step it less often"

    def get_last_lr(self) -> list[float]:
        """[the rate the last step set] (a list, as in PyTorch)."""
        return [self.optimizer.lr] if self.optimizer is not None else []

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "base_lr": self.base_lr}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a :meth:`state_dict` (after ``bind``): the optimizer gets that step's
        rate (and momentum). InputError for a state this schedule cannot be at."""
        if not isinstance(state, dict):
            raise InputError(f"a schedule state is a dict, got {state!r}")
        last_epoch, base_lr = state.get("last_epoch"), state.get("base_lr")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, numbers.Integral) or \
                not 0 <= last_epoch <= (self.last_step if self.last_step is not None else last_epoch):
            end = "" if self.last_step is None else f" and <= its last step {self.last_step}"
            raise InputError(f"last_epoch must be a whole number >= 0{end}, got {last_epoch!r}")
        self.base_lr = _real(base_lr, "base_lr", 0.0, low_open=True)
        self.last_epoch = int(last_epoch) - 1
        self.step()

    def get_config(self) -> dict:
        """``{"name": class name, "interval": ..., **arguments}``: :func:`from_config` makes
        the same schedule, unbound."""
        return {"name": type(self).__name__, "interval": self.interval,
                **{key: getattr(self, key) for key in self.config_keys}}

    # ---- fit ----------------------------------------------------------------------------------
    adds_logs = ("learning_rate",)

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if optimizer is None:
            raise RuntimeError(f"{type(self).__name__} needs a compiled model (an optimizer)")
        if self.optimizer is not optimizer:  # a second fit with the same optimizer goes on
            self._fill_from_fit(self.model._fit_state)
            self.bind(optimizer)
        self._check_room(self.model._fit_state)

    def _check_room(self, fit_state: dict) -> None:
        """InputError before the first batch when this fit would step past the last step."""
        last, steps = self.last_step, fit_state.get("steps")
        if last is None or not steps:
            return
        start, epochs = fit_state.get("initial_epoch", 0), fit_state["epochs"]
        per_epoch = steps if self.interval == "batch" else 1
        left, needed = last - self.last_epoch, (epochs - start) * per_epoch
        if needed <= left:
            return
        up_to = start + left // per_epoch
        shorter = (f"train up to epoch {up_to} (fit(epochs={up_to}); fastcnn train --resume: "
                   f"--epochs {up_to}), or " if up_to > start else "")
        raise InputError(
            f"{type(self).__name__} would be stepped past its last step ({last}): it is at step "
            f"{self.last_epoch} with {left} {self.interval} step{'s' if left != 1 else ''} left, "
            f"and this fit's {epochs - start} epoch{'s' if epochs - start != 1 else ''} would "
            f"take {needed}: {shorter}continue with a new schedule (model.compile("
            "model.optimizer, model.loss, schedule=...) keeps the optimizer's state; fastcnn "
            "train --resume: --new-schedule)")

    def _fill_from_fit(self, fit_state: dict) -> None:
        """Take lengths left unset from the fit (OneCycleLR's total_steps)."""

    def on_batch_end(self, batch, logs=None):
        if self.interval == "batch":
            self.step()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:  # Keras' rule: the rate at the epoch's end, before this step
            logs["learning_rate"] = self.optimizer.lr
        if self.interval == "epoch":
            self.step()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(step {self.last_epoch}, lr {self.get_last_lr()})"


class StepLR(LRScheduler):
    """torch.optim.lr_scheduler.StepLR: lr = base_lr * gamma ** (step // step_size)."""

    config_keys = ("step_size", "gamma")

    def __init__(self, optimizer=None, step_size: int = 1, gamma: float = 0.1,
                 interval: str | None = None):
        self.step_size = _positive_int(step_size, "step_size")
        self.gamma = _real(gamma, "gamma", 0.0, low_open=True)
        super().__init__(optimizer, interval)

    def rate_at(self, step):
        return self.base_lr * self.gamma ** (step // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """torch.optim.lr_scheduler.CosineAnnealingLR, with an optional linear warm-up:
    over the first ``warmup_steps`` steps the rate rises linearly from
    ``warmup_start_factor * base_lr`` towards base_lr (torch's LinearLR), then it follows
    the half cosine from base_lr down to ``eta_min`` at step ``T_max``
    (torch's SequentialLR of the two, with CosineAnnealingLR(T_max - warmup_steps)).
    Its last step is ``T_max``."""

    config_keys = ("T_max", "eta_min", "warmup_steps", "warmup_start_factor")

    def __init__(self, optimizer=None, T_max: int = 1, eta_min: float = 0.0,
                 warmup_steps: int = 0, warmup_start_factor: float = 1 / 3,
                 interval: str | None = None):
        self.T_max = _positive_int(T_max, "T_max")
        self.eta_min = _real(eta_min, "eta_min")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, numbers.Integral) \
                or not 0 <= warmup_steps < self.T_max:
            raise InputError(f"warmup_steps must be a whole number in [0, T_max={self.T_max}), "
                             f"got {warmup_steps!r}")
        self.warmup_steps = int(warmup_steps)
        self.warmup_start_factor = _real(warmup_start_factor, "warmup_start_factor", 0.0, 1.0,
                                         low_open=True)
        super().__init__(optimizer, interval)

    @property
    def last_step(self):
        return self.T_max

    def rate_at(self, step):
        warmup = self.warmup_steps
        if step < warmup:
            factor = self.warmup_start_factor
            return self.base_lr * (factor + (1 - factor) * step / warmup)
        progress = (step - warmup) / (self.T_max - warmup)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * progress)) / 2

    def _length_advice(self):
        return (f"T_max counts the {self.interval}s to anneal over: pass the number of "
                f"{self.interval}s the training runs")


class OneCycleLR(LRScheduler):
    """torch.optim.lr_scheduler.OneCycleLR (same arguments and defaults): the rate rises
    from max_lr / div_factor to max_lr over ``pct_start`` of the steps, then anneals to
    max_lr / div_factor / final_div_factor; with ``cycle_momentum`` the optimizer's
    momentum (SGD, RMSprop) or beta1 (Adam) moves the other way between
    ``max_momentum`` and ``base_momentum``. Stepped after every batch by default.

    Give ``total_steps``, or ``epochs`` and ``steps_per_epoch``; in fit, leave all three
    out to cover the whole fit. Its last step is ``total_steps``, which keeps the rate
    of step total_steps - 1 (PyTorch extrapolates the last phase there)."""

    default_interval = "batch"
    config_keys = ("max_lr", "total_steps", "pct_start", "anneal_strategy", "cycle_momentum",
                   "base_momentum", "max_momentum", "div_factor", "final_div_factor", "three_phase")

    def __init__(self, optimizer=None, max_lr: float = 0.01, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 interval: str | None = None):
        self.max_lr = _real(max_lr, "max_lr", 0.0, low_open=True)
        if total_steps is not None:
            self.total_steps = _positive_int(total_steps, "total_steps")
        elif epochs is not None or steps_per_epoch is not None:
            if epochs is None or steps_per_epoch is None:
                raise InputError("OneCycleLR needs total_steps, or epochs and steps_per_epoch both")
            self.total_steps = _positive_int(epochs, "epochs") * \
                _positive_int(steps_per_epoch, "steps_per_epoch")
        else:
            self.total_steps = None  # fit fills it in
        self.pct_start = _real(pct_start, "pct_start", 0.0, 1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise InputError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum = _real(base_momentum, "base_momentum", 0.0, 1.0, high_open=True)
        self.max_momentum = _real(max_momentum, "max_momentum", 0.0, 1.0, high_open=True)
        self.div_factor = _real(div_factor, "div_factor", 0.0, low_open=True)
        self.final_div_factor = _real(final_div_factor, "final_div_factor", 0.0, low_open=True)
        self.three_phase = bool(three_phase)
        super().__init__(optimizer, interval)

    @property
    def last_step(self):
        return self.total_steps

    def _fill_from_fit(self, fit_state):
        if self.total_steps is None:
            steps, epochs = fit_state.get("steps"), fit_state.get("epochs")
            start = fit_state.get("initial_epoch", 0)
            if not steps:
                raise InputError("OneCycleLR cannot tell how many batches this fit runs: pass "
                                 "total_steps, or steps_per_epoch to fit")
            self.total_steps = (epochs - start) * (steps if self.interval == "batch" else 1)

    def _momentum_name(self) -> str:
        from .optim import RMSprop

        optimizer = self.optimizer
        if hasattr(optimizer, "beta1"):
            return "beta1"
        if isinstance(optimizer, RMSprop) and not optimizer.momentum:
            raise InputError("OneCycleLR(cycle_momentum=True) with RMSprop needs momentum > 0 "
                             "(RMSprop(momentum=0.9), say), or cycle_momentum=False")
        if hasattr(optimizer, "momentum"):
            return "momentum"
        raise InputError(f"OneCycleLR(cycle_momentum=True) needs an optimizer with momentum or "
                         f"beta1, and {type(optimizer).__name__} has neither: pass "
                         "cycle_momentum=False")

    def _prepare(self):
        if self.total_steps is None:
            raise InputError("OneCycleLR needs total_steps, or epochs and steps_per_epoch "
                             "(in fit they may be left out: the fit's length is used)")
        initial = self.max_lr / self.div_factor
        low = initial / self.final_div_factor
        total = self.total_steps
        up, down = self.max_momentum, self.base_momentum
        if self.three_phase:
            self._phases = [(float(self.pct_start * total) - 1, initial, self.max_lr, up, down),
                            (float(2 * self.pct_start * total) - 2, self.max_lr, initial, down, up),
                            (total - 1, initial, low, up, up)]
        else:
            self._phases = [(float(self.pct_start * total) - 1, initial, self.max_lr, up, down),
                            (total - 1, self.max_lr, low, down, up)]
        self._momentum = self._momentum_name() if self.cycle_momentum else None

    def _anneal(self, start, end, fraction):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return (end - start) * fraction + start

    def _at(self, step):
        """(rate, momentum) at ``step``, as PyTorch's OneCycleLR.get_lr computes them."""
        start_step = 0.0
        for index, (end_step, lr0, lr1, m0, m1) in enumerate(self._phases):
            if step <= end_step or index == len(self._phases) - 1:
                # step total_steps (the step after the last batch of a PyTorch loop) keeps
                # the final rate, where PyTorch extrapolates (negative for "linear")
                # a phase of no steps (pct_start * total_steps == 1) ends where it starts:
                # its end value, where PyTorch divides by zero
                span = end_step - start_step
                fraction = 1.0 if span <= 0 else min(1.0, (step - start_step) / span)
                return self._anneal(lr0, lr1, fraction), self._anneal(m0, m1, fraction)
            start_step = end_step
        raise AssertionError("unreachable")

    def rate_at(self, step):
        rate, momentum = self._at(step)
        if self._momentum is not None:
            setattr(self.optimizer, self._momentum, momentum)
        return rate

    def _length_advice(self):
        return ("total_steps (or epochs * steps_per_epoch) must count every step: in fit, "
                "leave them out to cover the fit")


SCHEDULES = {cls.__name__: cls for cls in (StepLR, CosineAnnealingLR, OneCycleLR)}


def from_config(config: dict) -> LRScheduler:
    """A new, unbound schedule from ``get_config``'s dict; InputError naming what is wrong."""
    if not isinstance(config, dict):
        raise InputError(f"a schedule config is a dict with a name, got {config!r}")
    arguments = dict(config)
    name = arguments.pop("name", None)
    if name not in SCHEDULES:
        raise InputError(f"unknown schedule {name!r}; fastcnn has: {', '.join(SCHEDULES)}")
    try:
        return SCHEDULES[name](**arguments)
    except TypeError as exc:  # an argument this schedule does not take
        raise InputError(f"{name}: {exc}") from None
