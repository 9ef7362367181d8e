"""Optimizers: SGD with momentum, Adam and Adadelta, each an in-place kernel per parameter.

PyTorch-style use: ``opt = Adam(model.parameters(), lr=1e-3)``, then after each
backward pass ``opt.step()``. ``Sequential.compile`` binds them for you.
"""

from __future__ import annotations

from .backend import get_backend
from .parameter import Parameter


class Optimizer:
    name = "optimizer"
    slots: tuple = ()

    def __init__(self, params=None, lr: float = 0.01):
        if float(lr) <= 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        self.lr = float(lr)
        self.iterations = 0
        self.params: list[Parameter] = []
        if params is not None:
            self.bind(params)

    def bind(self, params) -> "Optimizer":
        self.params = list(params)
        return self

    def zero_grad(self) -> None:
        for param in self.params:
            param.zero_grad()

    def step(self) -> None:
        """Update every trainable parameter that has a gradient."""
        self.iterations += 1
        backend = get_backend()
        for param in self.params:
            if not param.trainable or param.grad is None:
                continue
            for slot in self.slots:
                if slot not in param.state:
                    param.state[slot] = backend.zeros(param.shape)
            self.update(backend, param, *(param.state[slot] for slot in self.slots))

    def update(self, backend, param, *state) -> None:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name, "lr": self.lr}


class SGD(Optimizer):
    """torch.optim.SGD: v = momentum*v + g; p -= lr*v."""

    name = "sgd"
    slots = ("velocity",)

    def __init__(self, params=None, lr: float = 0.01, momentum: float = 0.0):
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)

    def update(self, backend, param, velocity):
        backend.sgd_update(param.data, param.grad, velocity, self.lr, self.momentum)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


class Adam(Optimizer):
    """torch.optim.Adam with bias correction."""

    name = "adam"
    slots = ("exp_avg", "exp_avg_sq")

    def __init__(self, params=None, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)

    def update(self, backend, param, m, v):
        backend.adam_update(param.data, param.grad, m, v, self.lr, self.beta1, self.beta2,
                            self.eps, self.iterations)

    def get_config(self):
        return {**super().get_config(), "betas": [self.beta1, self.beta2], "eps": self.eps}


class Adadelta(Optimizer):
    """torch.optim.Adadelta (Keras 2's defaults were lr=1.0, rho=0.95, eps=1e-7)."""

    name = "adadelta"
    slots = ("square_avg", "acc_delta")

    def __init__(self, params=None, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6):
        super().__init__(params, lr)
        self.rho, self.eps = float(rho), float(eps)

    def update(self, backend, param, square_avg, acc_delta):
        backend.adadelta_update(param.data, param.grad, square_avg, acc_delta, self.lr,
                                self.rho, self.eps)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "eps": self.eps}


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, Adadelta)}


def get(spec, lr: float | None = None) -> Optimizer:
    """An optimizer from an instance, a name ("sgd", "adam", "adadelta") or a config dict."""
    if isinstance(spec, Optimizer):
        if lr is not None:
            spec.lr = float(lr)
        return spec
    config = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = str(config.pop("name")).lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if lr is not None:
        config["lr"] = lr
    return OPTIMIZERS[name](**config)
