"""The Layer base class: parameters, shapes, buffers and the forward/backward protocol.

A layer works on per-sample shapes: ``input_shape`` is (C, H, W) for images
or (F,) for feature vectors, never including the batch. Every kernel call
goes through :mod:`fastcnn.functional`, so no layer knows which backend runs.
"""

from __future__ import annotations

import numpy as np

from .. import functional
from ..errors import InputError
from ..parameter import Parameter, Workspace

REGISTRY: dict[str, type] = {}
"""Layer classes by name (and alias), for ``from_config`` and loading: every subclass of
Layer registers itself when its class statement runs (names starting with "_" excepted)."""


def register(cls: type, *names: str) -> type:
    """Register ``cls`` under its class name and ``names`` (aliases such as Keras' spellings).
    A later class of the same name replaces an earlier one (a module reloaded)."""
    for key in (cls.__name__,) + tuple(names):
        REGISTRY[key] = cls
    return cls


def layer_class(name: str) -> type:
    """The registered layer class called ``name``; a ValueError listing the known ones if none."""
    if name not in REGISTRY:
        raise ValueError(f"unknown layer {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


class Layer:
    """Base class. Subclasses define ``compute_output_shape``, ``forward``, ``backward``
    and, when they hold weights, ``create_parameters``; a layer with state beside its
    weights (running statistics, a dropout seed) defines ``get_state``/``set_state``.

    Class attributes: ``aliases`` (more names to register the class under),
    ``training_differs`` (True when training mode changes what the layer computes, as
    dropout and batch normalisation: such a layer is never precomputed once for all
    epochs), ``preserves_scores`` (True when the layer's inference output holds its
    input's values, as Flatten and Dropout: a network ending in logits still does),
    ``min_training_batch`` (the smallest batch it trains on: 2 for batch statistics).
    """

    aliases: tuple = ()
    training_differs: bool = False
    preserves_scores: bool = False
    min_training_batch: int = 1

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            register(cls, *cls.__dict__.get("aliases", ()))

    def __init__(self, name: str | None = None, trainable: bool = True):
        self.name = name
        self.trainable = trainable
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None
        self.params: dict[str, Parameter] = {}
        self.buffers: dict[str, Parameter] = {}  # state arrays that live on the backend (frozen)
        self.workspace = Workspace()

    # ---- building --------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.input_shape is not None

    def build(self, input_shape: tuple, rng: np.random.Generator | None = None) -> tuple:
        """Fix the per-sample input shape, create the weights; returns the output shape."""
        input_shape = tuple(int(s) for s in input_shape)
        output_shape = self.compute_output_shape(input_shape)
        self.input_shape, self.output_shape = input_shape, output_shape
        self.create_parameters(rng if rng is not None else np.random.default_rng())
        for param in self.params.values():
            param.trainable = self.trainable
        return output_shape

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def create_parameters(self, rng: np.random.Generator) -> None:
        """Create ``self.params`` (name -> Parameter); layers without weights do nothing."""

    # ---- running ------------------------------------------------------------------
    def forward(self, x, training: bool = False):
        """x (N, *input_shape) backend array -> (N, *output_shape) backend array.

        The result is a buffer the layer reuses on its next call: copy it to keep it.
        """
        raise NotImplementedError

    def infer(self, x):
        """forward(x) in inference mode when no backward pass follows (predict, evaluate):
        a layer may skip keeping what only its backward pass reads."""
        return self.forward(x, training=False)

    def backward(self, dout, need_input_grad: bool = True):
        """dout (N, *output_shape) -> dx (N, *input_shape), or None when not needed.

        Writes the gradient of every trainable parameter to ``param.grad``.
        May overwrite ``dout``.
        """
        raise NotImplementedError

    def __call__(self, x, training: bool = False):
        """Forward on a host or backend array, building the layer from x's shape if needed."""
        x = functional.to_backend(x, "x")
        if not self.built:
            self.build(tuple(x.shape)[1:])
        for param in list(self.params.values()) + list(self.buffers.values()):
            param.ensure_backend()
        self.check_input(x)
        return self.forward(x, training=training)

    def check_input(self, x) -> None:
        if tuple(x.shape[1:]) != self.input_shape:
            raise InputError(
                f"{self.describe()} expects inputs of shape (N, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}")

    # ---- state beside the parameters ----------------------------------------------------
    def get_state(self) -> dict:
        """State that is not a trainable weight: NumPy arrays (saved in ``state_dict`` and
        checkpoints as ``<layer>.<key>``, PyTorch's buffer names) or JSON-able scalars
        (saved in the checkpoint's metadata). Empty by default."""
        return {}

    def set_state(self, state: dict) -> None:
        """Put back what :meth:`get_state` returned (values already checked for shape
        and type by the caller). A layer without state accepts only an empty dict."""
        if state:
            raise InputError(f"{self.describe()} has no state, got {sorted(state)}")

    def state_arrays(self) -> dict:
        """The array part of :meth:`get_state` (host NumPy arrays), by key."""
        return {k: v for k, v in self.get_state().items() if isinstance(v, np.ndarray)}

    # ---- parameters ------------------------------------------------------------------
    def parameters(self) -> list[Parameter]:
        return list(self.params.values())

    def freeze(self) -> "Layer":
        """Stop training this layer's weights (e.g. a fixed, hand-made kernel)."""
        self.trainable = False
        for param in self.params.values():
            param.trainable = False
        return self

    def unfreeze(self) -> "Layer":
        self.trainable = True
        for param in self.params.values():
            param.trainable = True
        return self

    # ---- description --------------------------------------------------------------------
    def get_config(self) -> dict:
        """Constructor arguments that rebuild this layer (weights excluded)."""
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        """A new layer from :meth:`get_config`'s dict."""
        return cls(**config)

    def describe(self) -> str:
        return f"{type(self).__name__}" + (f" {self.name!r}" if self.name else "")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if k not in ("name", "trainable") and v is not None)
        return f"{type(self).__name__}({args})"
