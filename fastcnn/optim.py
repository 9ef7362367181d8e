"""Optimizers: SGD with (Nesterov) momentum, Adam, AdamW, Adadelta and RMSprop: in-place
kernels, one call over every parameter where the backend has it (contract.MULTI_TENSOR),
else one per parameter; gradient clipping (``clipnorm``, ``global_clipnorm``, ``clipvalue``
and :func:`clip_grad_norm_`).

PyTorch-style use: ``opt = Adam(model.parameters(), lr=1e-3)`` (or
``SGD(model.parameters(), 0.1)``), then after each backward pass ``opt.step()``.
Keras-style use: ``Adam(learning_rate=1e-3)`` or ``SGD(0.01, momentum=0.9)`` passed
to ``Sequential.compile``, which binds the parameters for you.

``weight_decay`` follows PyTorch: SGD and Adam add ``weight_decay * param`` to the
gradient they use (L2; ``param.grad`` itself stays as backward left it); AdamW decays
the weights directly, ``param *= 1 - lr * weight_decay``, before its Adam step.

Clipping follows Keras: ``clipnorm`` rescales each parameter's gradient whose L2 norm
exceeds it to that norm, ``global_clipnorm`` all of them together when their joint norm
exceeds it, ``clipvalue`` clamps every element to [-clipvalue, clipvalue]; at most one
of the three. It runs at the start of ``step()``, on the gradients in place, before
the weight decay is added. In a PyTorch-style loop, ``fastcnn.clip_grad_norm_(
model.parameters(), max_norm)`` between ``backward()`` and ``step()`` does what
torch.nn.utils.clip_grad_norm_ does and returns the total norm.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

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


def _optional_number(value, what: str):
    return None if value is None else _number(value, what, 0.0, low_open=True)


def _grads(parameters) -> list:
    """The gradients of ``parameters`` (a Parameter, or an iterable of them) that have one."""
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    return [param.grad for param in parameters if param.grad is not None]


def _global_norm(grads) -> float:
    """The L2 norm of every array of ``grads`` taken together (float64 from per-array sums)."""
    if not grads:
        return 0.0
    backend = get_backend()
    sums = backend.zeros((len(grads),))
    functional.sum_of_squares_many(grads, sums)
    return math.sqrt(float(np.sum(np.asarray(backend.to_host(sums), np.float64))))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """torch.nn.utils.clip_grad_norm_: scale the gradients of ``parameters`` (Parameters
    with a ``grad``; those without are skipped) in place by max_norm / (total + 1e-6) when
    that is below 1, where total is the L2 norm of all of them together. Returns total
    (a float). Only ``norm_type=2`` is supported."""
    max_norm = _number(max_norm, "max_norm", 0.0)
    if float(norm_type) != 2.0:
        raise ValueError(f"clip_grad_norm_ supports norm_type=2 only, got {norm_type!r}")
    grads = _grads(parameters)
    total = _global_norm(grads)
    if error_if_nonfinite and not math.isfinite(total):
        raise FloatingPointError(f"the total norm of the gradients is {total}: "
                                 "pass error_if_nonfinite=False to clip anyway")
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1.0:
        functional.scale_many(grads, coefficient)
    return total


def clip_grad_value_(parameters, clip_value: float) -> None:
    """torch.nn.utils.clip_grad_value_: clamp every gradient element of ``parameters`` to
    [-clip_value, clip_value], in place."""
    clip_value = _number(clip_value, "clip_value", 0.0)
    grads = _grads(parameters)
    if grads:
        functional.clip_many(grads, -clip_value, clip_value)


class Optimizer:
    """Base class: ``lr`` (alias ``learning_rate``), PyTorch-style ``weight_decay`` and
    Keras' gradient clipping (``clipnorm``, ``global_clipnorm``, ``clipvalue``).
    A subclass that sets its own ``name`` registers itself in :data:`OPTIMIZERS`."""

    name = "optimizer"
    slots: tuple = ()
    default_lr = 0.01

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            OPTIMIZERS[cls.name] = cls

    def __init__(self, params=None, lr: float | None = None, weight_decay: float = 0.0,
                 learning_rate: float | None = None, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None):
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
        self.clipnorm = _optional_number(clipnorm, "clipnorm")
        self.clipvalue = _optional_number(clipvalue, "clipvalue")
        self.global_clipnorm = _optional_number(global_clipnorm, "global_clipnorm")
        clipping = [name for name in ("clipnorm", "clipvalue", "global_clipnorm")
                    if getattr(self, name) is not None]
        if len(clipping) > 1:
            raise ValueError(f"pass at most one of clipnorm, clipvalue and global_clipnorm, "
                             f"got {' and '.join(clipping)}")
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
        self._clip([param.grad for param in params])
        for param in params:
            for slot in self.slots:
                if slot not in param.state:
                    param.state[slot] = backend.zeros(param.shape)
        if params:
            grads = [self._gradient(param) for param in params]
            self.update_all(params, grads, *([param.state[slot] for param in params]
                                             for slot in self.slots))

    def _clip(self, grads) -> None:
        """Keras' clipping of the gradients about to be used, in place."""
        if not grads:
            return
        if self.clipvalue is not None:
            functional.clip_many(grads, -self.clipvalue, self.clipvalue)
        elif self.global_clipnorm is not None:
            total = _global_norm(grads)
            if total > self.global_clipnorm:
                functional.scale_many(grads, self.global_clipnorm / total)
        elif self.clipnorm is not None:
            backend = get_backend()
            sums = backend.zeros((len(grads),))
            functional.sum_of_squares_many(grads, sums)
            norms = np.sqrt(np.asarray(backend.to_host(sums), np.float64))
            for grad, norm in zip(grads, norms):
                if norm > self.clipnorm:
                    functional.scale_many([grad], self.clipnorm / norm)

    def update_all(self, params, grads, *states) -> None:
        """:meth:`update` on every parameter with the gradient it uses (grads, one per
        parameter); ``states`` holds one list per slot."""
        for param, grad, *state in zip(params, grads, *states):
            self.update(param, grad, *state)

    def _gradient(self, param):
        """The gradient the update uses: ``param.grad``, or with weight decay (PyTorch's L2)
        grad + weight_decay * param in a work array, leaving ``param.grad`` as backward
        left it (torch.optim does not change .grad either)."""
        if not self.weight_decay:
            return param.grad
        decayed = self._scratch_for(param)
        functional.axpby(1.0, param.grad, self.weight_decay, param.data, decayed)
        return decayed

    def _scratch_for(self, param):
        """A work array of the parameter's shape on the active backend (zero at first)."""
        key = (id(param), backend_name(), param.shape)
        if key not in self._scratch:
            self._scratch = {k: v for k, v in self._scratch.items() if k[0] != id(param)}
            self._scratch[key] = get_backend().zeros(param.shape)
        return self._scratch[key]

    def update(self, param, grad, *state) -> None:
        """One parameter's step with ``grad`` (param's shape) and its slots, in place."""
        raise NotImplementedError

    def get_config(self) -> dict:
        config = {"name": self.name, "lr": self.lr}
        if self.weight_decay:
            config["weight_decay"] = self.weight_decay
        for name in ("clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(self, name) is not None:
                config[name] = getattr(self, name)
        return config


class SGD(Optimizer):
    """torch.optim.SGD: g += weight_decay*p; v = momentum*v + g; p -= lr*v, or with
    ``nesterov=True`` p -= lr*(g + momentum*v)."""

    name = "sgd"
    slots = ("velocity",)

    def __init__(self, params=None, lr: float | None = None, momentum: float = 0.0,
                 weight_decay: float = 0.0, learning_rate: float | None = None,
                 nesterov: bool = False, **clipping):
        super().__init__(params, lr, weight_decay, learning_rate, **clipping)
        self.momentum = _number(momentum, "momentum", 0.0, 1.0)
        if not isinstance(nesterov, bool):
            raise ValueError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs a momentum above 0 (as in PyTorch): "
                             "pass momentum=0.9, say")
        self.nesterov = nesterov

    def update(self, param, grad, velocity):
        self.update_all([param], [grad], [velocity])

    def update_all(self, params, grads, velocities):
        update = functional.nesterov_update_many if self.nesterov else functional.sgd_update_many
        update([p.data for p in params], grads, velocities, self.lr, self.momentum)

    def get_config(self):
        config = {**super().get_config(), "momentum": self.momentum}
        if self.nesterov:
            config["nesterov"] = True
        return config


class Adam(Optimizer):
    """torch.optim.Adam with bias correction; ``weight_decay`` is L2 added to the gradient."""

    name = "adam"
    slots = ("exp_avg", "exp_avg_sq")
    default_lr = 1e-3

    def __init__(self, params=None, lr: float | None = None, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, learning_rate: float | None = None,
                 beta_1: float | None = None, beta_2: float | None = None,
                 epsilon: float | None = None, **clipping):
        super().__init__(params, lr, weight_decay, learning_rate, **clipping)
        if len(tuple(betas)) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        # Keras' spellings: beta_1, beta_2 and epsilon replace the PyTorch values
        betas = (betas[0] if beta_1 is None else beta_1, betas[1] if beta_2 is None else beta_2)
        eps = eps if epsilon is None else epsilon
        self.beta1, self.beta2 = (_number(b, "each beta", 0.0, 1.0) for b in betas)
        self.eps = _number(eps, "eps", 0.0)

    def update(self, param, grad, m, v):
        functional.adam_update(param.data, grad, m, v, self.lr, self.beta1, self.beta2,
                               self.eps, self.iterations)

    def update_all(self, params, grads, ms, vs):
        functional.adam_update_many([p.data for p in params], grads, ms, vs, self.lr, self.beta1,
                                    self.beta2, self.eps, self.iterations)

    def get_config(self):
        return {**super().get_config(), "betas": [self.beta1, self.beta2], "eps": self.eps}


class AdamW(Adam):
    """torch.optim.AdamW (and Keras' AdamW, whose spellings ``learning_rate``, ``beta_1``,
    ``beta_2``, ``epsilon`` it takes): decoupled weight decay, every weight scaled by
    1 - lr*weight_decay (torch's ``param.mul_``), then the Adam step on the undecayed
    gradient. Composed from two contract operations, ``scale_many`` and
    ``adam_update_many``: no kernel of its own. ``weight_decay`` defaults to PyTorch's
    0.01 (Keras' is 0.004: pass it)."""

    name = "adamw"

    def __init__(self, params=None, lr: float | None = None, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, learning_rate: float | None = None, **keras_and_clipping):
        super().__init__(params, lr, betas, eps, weight_decay, learning_rate, **keras_and_clipping)

    def _gradient(self, param):
        """The gradient itself: update_all decays the weights instead."""
        return param.grad

    def update(self, param, grad, m, v):
        self.update_all([param], [grad], [m], [v])

    def update_all(self, params, grads, ms, vs):
        if self.weight_decay:
            functional.scale_many([p.data for p in params], 1.0 - self.lr * self.weight_decay)
        super().update_all(params, grads, ms, vs)

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.weight_decay}


class Adadelta(Optimizer):
    """torch.optim.Adadelta (Keras 2's defaults were lr=1.0, rho=0.95, eps=1e-7)."""

    name = "adadelta"
    slots = ("square_avg", "acc_delta")
    default_lr = 1.0

    def __init__(self, params=None, lr: float | None = None, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, learning_rate: float | None = None, **clipping):
        super().__init__(params, lr, weight_decay, learning_rate, **clipping)
        self.rho, self.eps = _number(rho, "rho", 0.0, 1.0), _number(eps, "eps", 0.0)

    def update(self, param, grad, square_avg, acc_delta):
        functional.adadelta_update(param.data, grad, square_avg, acc_delta, self.lr, self.rho,
                                   self.eps)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "eps": self.eps}


class RMSprop(Optimizer):
    """torch.optim.RMSprop: sa = alpha*sa + (1-alpha)*g*g; avg = sqrt(sa) + eps (centered:
    sqrt(sa - ga*ga) + eps with ga = alpha*ga + (1-alpha)*g); p -= lr*g/avg, or with
    momentum buf = momentum*buf + g/avg, p -= lr*buf. PyTorch's defaults; ``rho`` (Keras'
    name) is ``alpha``, though the update stays PyTorch's (eps outside the square root)."""

    name = "rmsprop"
    default_lr = 0.01

    def __init__(self, params=None, lr: float | None = None, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, learning_rate: float | None = None,
                 rho: float | None = None, **clipping):
        super().__init__(params, lr, weight_decay, learning_rate, **clipping)
        self.alpha = _number(alpha if rho is None else rho, "alpha (rho)", 0.0, 1.0)
        self.eps = _number(eps, "eps", 0.0)
        self.momentum = _number(momentum, "momentum", 0.0, 1.0)
        if not isinstance(centered, bool):
            raise ValueError(f"centered must be True or False, got {centered!r}")
        self.centered = centered
        self.slots = ("square_avg",) + (("grad_avg",) if centered else ()) + \
            (("momentum_buffer",) if self.momentum else ())

    def update(self, param, grad, square_avg, *optional):
        state = dict(zip(self.slots[1:], optional))
        functional.rmsprop_update(param.data, grad, square_avg, state.get("grad_avg"),
                                  state.get("momentum_buffer"), self.lr, self.alpha, self.eps,
                                  self.momentum)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "eps": self.eps,
                "momentum": self.momentum, "centered": self.centered}


def get(spec, lr: float | None = None) -> Optimizer:
    """An optimizer from an instance, a name (a key of :data:`OPTIMIZERS`) or a config dict."""
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
