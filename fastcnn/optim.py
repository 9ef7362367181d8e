"""Optimizers: SGD with momentum, Adam, AdamW and Adadelta: in-place kernels, one call over
every parameter where the backend has it (contract.MULTI_TENSOR), else one per parameter.

PyTorch-style use: ``opt = Adam(model.parameters(), lr=1e-3)`` (or
``SGD(model.parameters(), 0.1)``), then after each backward pass ``opt.step()``.
Keras-style use: ``Adam(learning_rate=1e-3)`` or ``SGD(0.01, momentum=0.9)`` passed
to ``Sequential.compile``, which binds the parameters for you.

``weight_decay`` follows PyTorch: SGD and Adam add ``weight_decay * param`` to the
gradient (L2); AdamW decays the weights directly, ``param *= 1 - lr * weight_decay``,
before its Adam step.
"""

from __future__ import annotations

import numbers

from . import functional
from .backend import backend_name, get_backend
from .parameter import Parameter


def _number(value, what: str, low: float, high: float | None = None, low_open: bool = False) -> float:
    """``value`` as a float in [low, high) (or (low, ...) when low_open), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a number, got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    if too_low or (high is not None and value >= high) or value != value:
        bounds = f"{'(' if low_open else '['}{low:g}, {'inf' if high is None else f'{high:g}'})"
        raise ValueError(f"{what} must be in {bounds}, got {value}")
    return value


OPTIMIZERS: dict[str, type] = {}
"""Optimizer classes by ``name``, filled as each subclass is defined: ``get``, checkpoints and
the command line's ``--optimizer`` choices all read it."""


class Optimizer:
    """Base class: ``lr`` (alias ``learning_rate``) and PyTorch-style ``weight_decay``.
    A subclass that sets its own ``name`` registers itself in :data:`OPTIMIZERS`."""

    name = "optimizer"
    slots: tuple = ()
    default_lr = 0.01

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            OPTIMIZERS[cls.name] = cls

    def __init__(self, params=None, lr: float | None = None, weight_decay: float = 0.0,
                 learning_rate: float | None = None):
        if isinstance(params, numbers.Real) and not isinstance(params, bool):
            # Keras order: the first positional argument is the learning rate
            if lr is not None:
                raise ValueError("got a learning rate as the first argument and lr= as well")
            params, lr = None, params
        if lr is not None and learning_rate is not None and float(lr) != float(learning_rate):
            raise ValueError(f"lr={lr} and learning_rate={learning_rate} disagree: pass one of them")
        rate = lr if lr is not None else learning_rate
        self.lr = _number(self.default_lr if rate is None else rate, "learning rate", 0.0, low_open=True)
        self.weight_decay = _number(weight_decay, "weight_decay", 0.0)
        self.iterations = 0
        self.params: list[Parameter] = []
        self._scratch: dict = {}
        if params is not None:
            self.bind(params)

    @property
    def learning_rate(self) -> float:
        """Keras' name for ``lr`` (LearningRateScheduler and ReduceLROnPlateau set it)."""
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        self.lr = _number(value, "learning rate", 0.0, low_open=True)

    def bind(self, params) -> "Optimizer":
        params = list(params)
        bad = [type(p).__name__ for p in params if not isinstance(p, Parameter)]
        if bad:
            raise TypeError(f"an optimizer takes fastcnn Parameters (model.parameters()), got {bad[0]}")
        self.params = params
        return self

    def zero_grad(self) -> None:
        for param in self.params:
            param.zero_grad()

    def step(self) -> None:
        """Update every trainable parameter that has a gradient."""
        self.iterations += 1
        backend = get_backend()
        params = [param for param in self.params if param.trainable and param.grad is not None]
        for param in params:
            for slot in self.slots:
                if slot not in param.state:
                    param.state[slot] = backend.zeros(param.shape)
            if self.weight_decay:
                self._decay(param)
        if params:
            self.update_all(params, *([param.state[slot] for param in params]
                                      for slot in self.slots))

    def update_all(self, params, *states) -> None:
        """:meth:`update` on every parameter; ``states`` holds one list per slot."""
        for param, *state in zip(params, *states):
            self.update(param, *state)

    def _decay(self, param) -> None:
        """PyTorch's L2 weight decay: grad += weight_decay * param."""
        functional.add_scaled(param.grad, param.data, self.weight_decay, self._scratch_for(param))

    def _scratch_for(self, param):
        """A zero-initialised work array of the parameter's shape on the active backend."""
        key = (id(param), backend_name(), param.shape)
        if key not in self._scratch:
            self._scratch = {k: v for k, v in self._scratch.items() if k[0] != id(param)}
            self._scratch[key] = get_backend().zeros(param.shape)
        return self._scratch[key]

    def update(self, param, *state) -> None:
        raise NotImplementedError

    def get_config(self) -> dict:
        config = {"name": self.name, "lr": self.lr}
        if self.weight_decay:
            config["weight_decay"] = self.weight_decay
        return config


class SGD(Optimizer):
    """torch.optim.SGD: g += weight_decay*p; v = momentum*v + g; p -= lr*v."""

    name = "sgd"
    slots = ("velocity",)

    def __init__(self, params=None, lr: float | None = None, momentum: float = 0.0,
                 weight_decay: float = 0.0, learning_rate: float | None = None):
        super().__init__(params, lr, weight_decay, learning_rate)
        self.momentum = _number(momentum, "momentum", 0.0, 1.0)

    def update(self, param, velocity):
        functional.sgd_update(param.data, param.grad, velocity, self.lr, self.momentum)

    def update_all(self, params, velocities):
        functional.sgd_update_many([p.data for p in params], [p.grad for p in params],
                                   velocities, self.lr, self.momentum)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


class Adam(Optimizer):
    """torch.optim.Adam with bias correction; ``weight_decay`` is L2 added to the gradient."""

    name = "adam"
    slots = ("exp_avg", "exp_avg_sq")
    default_lr = 1e-3

    def __init__(self, params=None, lr: float | None = None, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, learning_rate: float | None = None):
        super().__init__(params, lr, weight_decay, learning_rate)
        if len(tuple(betas)) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1, self.beta2 = (_number(b, "each beta", 0.0, 1.0) for b in betas)
        self.eps = _number(eps, "eps", 0.0)

    def update(self, param, m, v):
        functional.adam_update(param.data, param.grad, m, v, self.lr, self.beta1, self.beta2,
                               self.eps, self.iterations)

    def update_all(self, params, ms, vs):
        functional.adam_update_many([p.data for p in params], [p.grad for p in params], ms, vs,
                                    self.lr, self.beta1, self.beta2, self.eps, self.iterations)

    def get_config(self):
        return {**super().get_config(), "betas": [self.beta1, self.beta2], "eps": self.eps}


class AdamW(Adam):
    """torch.optim.AdamW: decoupled weight decay, p *= 1 - lr*weight_decay, then Adam."""

    name = "adamw"

    def __init__(self, params=None, lr: float | None = None, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, learning_rate: float | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, learning_rate)

    def _decay(self, param) -> None:
        functional.add_scaled(param.data, param.data, -self.lr * self.weight_decay,
                              self._scratch_for(param))

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.weight_decay}


class Adadelta(Optimizer):
    """torch.optim.Adadelta (Keras 2's defaults were lr=1.0, rho=0.95, eps=1e-7)."""

    name = "adadelta"
    slots = ("square_avg", "acc_delta")
    default_lr = 1.0

    def __init__(self, params=None, lr: float | None = None, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, learning_rate: float | None = None):
        super().__init__(params, lr, weight_decay, learning_rate)
        self.rho, self.eps = _number(rho, "rho", 0.0, 1.0), _number(eps, "eps", 0.0)

    def update(self, param, square_avg, acc_delta):
        functional.adadelta_update(param.data, param.grad, square_avg, acc_delta, self.lr,
                                   self.rho, self.eps)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "eps": self.eps}


def get(spec, lr: float | None = None) -> Optimizer:
    """An optimizer from an instance, a name (a key of OPTIMIZERS: "sgd", "adam", ...) or a
    config dict."""
    if isinstance(spec, Optimizer):
        if lr is not None:
            spec.learning_rate = lr
        return spec
    if not isinstance(spec, (str, dict)):
        raise ValueError(f"an optimizer is an Optimizer, a name or a config dict, got {spec!r}; "
                         f"choose one of: {', '.join(OPTIMIZERS)}")
    config = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = str(config.pop("name")).lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if lr is not None:
        config["lr"] = lr
    return OPTIMIZERS[name](**config)
