"""The zoo: five classic MNIST/KMNIST tutorial architectures with their training recipes,
a Keras-style Fashion-MNIST CNN (BatchNorm, augmentation, one-cycle schedule) and the
MNIST speedrun (issue 23).

    model = fastcnn.zoo.get("pytorch_cnn", seed=0)
    recipe = fastcnn.zoo.recipe("pytorch_cnn", epochs=3)
"""

from __future__ import annotations

from .fashion_cnn import RECIPE as _FASHION_RECIPE, fashion_cnn
from .fixed_kernel_cnn import RECIPE as _FIXED_RECIPE, fixed_kernel_cnn
from .keras_kfold_cnn import RECIPE as _KFOLD_RECIPE, keras_kfold_cnn
from .mnist_speedrun import RECIPE as _SPEEDRUN_RECIPE, mnist_speedrun
from .kmnist_cnn import PROTOCOLS as _KMNIST_PROTOCOLS, RECIPE as _KMNIST_RECIPE, kmnist_cnn
from .numpy_mlp import COMPAT_RECIPE as _MLP_COMPAT_RECIPE, RECIPE as _MLP_RECIPE, numpy_mlp
from .pytorch_cnn import RECIPE as _TORCH_RECIPE, pytorch_cnn
from .recipe import Recipe

MODELS = {
    "pytorch_cnn": (pytorch_cnn, _TORCH_RECIPE),
    "keras_kfold_cnn": (keras_kfold_cnn, _KFOLD_RECIPE),
    "kmnist_cnn": (kmnist_cnn, _KMNIST_RECIPE),
    "numpy_mlp": (numpy_mlp, _MLP_RECIPE),
    "fixed_kernel_cnn": (fixed_kernel_cnn, _FIXED_RECIPE),
    "fashion_cnn": (fashion_cnn, _FASHION_RECIPE),
    "mnist_speedrun": (mnist_speedrun, _SPEEDRUN_RECIPE),
}
"""Model name -> (constructor, default recipe)."""

PROTOCOLS = {"kmnist_cnn": _KMNIST_PROTOCOLS,
             "numpy_mlp": {"article": _MLP_RECIPE, "compat": _MLP_COMPAT_RECIPE}}
"""Model name -> {protocol: recipe}, for the articles run under more than one protocol."""


def _check(name: str) -> None:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; the zoo has: {', '.join(MODELS)}")


def get(name: str, seed: int | None = None, **kwargs):
    """Build zoo model ``name`` (e.g. ``compat=True`` for numpy_mlp)."""
    _check(name)
    return MODELS[name][0](seed=seed, **kwargs)


def recipe(name: str, compat: bool = False, protocol: str | None = None, **overrides) -> Recipe:
    """The model's training recipe, with any field overridden (None leaves it).
    ``protocol`` picks one of :data:`PROTOCOLS` (e.g. kmnist_cnn's "benchmark");
    ``compat`` is numpy_mlp's "compat" protocol."""
    _check(name)
    if compat and name == "numpy_mlp":
        protocol = protocol or "compat"
    choices = PROTOCOLS.get(name, {"article": MODELS[name][1]})
    if protocol is not None and protocol not in choices:
        raise ValueError(f"{name} has no protocol {protocol!r}; it has: {', '.join(choices)}")
    return choices[protocol or "article"].replace(**overrides)


def names() -> list[str]:
    return list(MODELS)


__all__ = ["MODELS", "PROTOCOLS", "Recipe", "get", "recipe", "names", "pytorch_cnn", "keras_kfold_cnn",
           "kmnist_cnn", "numpy_mlp", "fixed_kernel_cnn", "fashion_cnn", "mnist_speedrun"]
