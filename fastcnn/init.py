"""Weight initialisers: PyTorch's default, He and Glorot uniform, plain uniform, fixed values.

Each initialiser is a callable ``(shape, fan_in, fan_out, rng) -> ndarray``;
layers accept one of these objects, its name as a string, or a fixed array.
"""

from __future__ import annotations

import math

import numpy as np


class Initializer:
    name = "initializer"

    def __call__(self, shape, fan_in, fan_out, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name}


class _Uniform(Initializer):
    def bound(self, fan_in, fan_out) -> float:
        raise NotImplementedError

    def __call__(self, shape, fan_in, fan_out, rng):
        limit = self.bound(fan_in, fan_out)
        return rng.uniform(-limit, limit, size=shape).astype(np.float32)


class PyTorchDefault(_Uniform):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): torch.nn's kaiming_uniform(a=sqrt(5)) for
    Conv2d/Linear weights, and the same bound for their biases."""

    name = "pytorch_default"

    def bound(self, fan_in, fan_out):
        return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


class HeUniform(_Uniform):
    """U(-sqrt(6/fan_in), sqrt(6/fan_in)), Keras' he_uniform."""

    name = "he_uniform"

    def bound(self, fan_in, fan_out):
        return math.sqrt(6.0 / fan_in)


class GlorotUniform(_Uniform):
    """U(-sqrt(6/(fan_in+fan_out)), +...), Keras' default glorot_uniform."""

    name = "glorot_uniform"

    def bound(self, fan_in, fan_out):
        return math.sqrt(6.0 / (fan_in + fan_out))


class Uniform(Initializer):
    """U(a, b)."""

    name = "uniform"

    def __init__(self, a: float = -0.05, b: float = 0.05):
        if not a < b:
            raise ValueError(f"uniform(a, b) needs a < b, got a={a}, b={b}")
        self.a, self.b = float(a), float(b)

    def __call__(self, shape, fan_in, fan_out, rng):
        return rng.uniform(self.a, self.b, size=shape).astype(np.float32)

    def get_config(self):
        return {"name": self.name, "a": self.a, "b": self.b}


class Zeros(Initializer):
    name = "zeros"

    def __call__(self, shape, fan_in, fan_out, rng):
        return np.zeros(shape, dtype=np.float32)


class Constant(Initializer):
    """A fixed array (e.g. a hand-made kernel), broadcast to the parameter's shape."""

    name = "constant"

    def __init__(self, value):
        self.value = np.asarray(value, dtype=np.float32)

    def __call__(self, shape, fan_in, fan_out, rng):
        try:
            return np.broadcast_to(self.value, shape).astype(np.float32)
        except ValueError:
            raise ValueError(f"a fixed initial value of shape {self.value.shape} does not fit "
                             f"a parameter of shape {tuple(shape)}") from None

    def get_config(self):
        return {"name": self.name, "value": self.value.tolist()}


pytorch_default = PyTorchDefault
he_uniform = HeUniform
glorot_uniform = GlorotUniform
uniform = Uniform
zeros = Zeros
constant = Constant

_BY_NAME = {cls.name: cls for cls in (PyTorchDefault, HeUniform, GlorotUniform, Uniform, Zeros, Constant)}


def get(spec) -> Initializer:
    """An Initializer from an instance, a name, a config dict or a fixed array."""
    if isinstance(spec, Initializer):
        return spec
    if isinstance(spec, str):
        if spec not in _BY_NAME:
            raise ValueError(f"unknown initializer {spec!r}; choose one of: {', '.join(_BY_NAME)}")
        return _BY_NAME[spec]()
    if isinstance(spec, dict):
        config = dict(spec)
        return _BY_NAME[config.pop("name")](**config)
    if isinstance(spec, (np.ndarray, list, tuple)):
        return Constant(spec)
    raise TypeError(f"an initializer must be a name, an Initializer or an array, got {type(spec).__name__}")
