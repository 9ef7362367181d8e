"""Layers: every one calls the kernel contract only and never knows which backend runs.

Every Layer subclass registers itself by class name (``base.REGISTRY``), so a saved model
names its layers and ``from_config`` finds them without a hand-kept list.
"""

from .activations import ELU, GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .base import REGISTRY, Layer, layer_class, register
from .conv import Conv2D
from .dense import Dense, Flatten
from .dropout import Dropout, Dropout2d
from .log_softmax import LogSoftmax
from .pooling import AvgPool2D, GlobalAveragePooling2D, MaxPool2D

LAYERS = REGISTRY
"""Layer classes by name, for rebuilding a saved model (the registry itself)."""


def from_config(class_name: str, config: dict) -> Layer:
    """A new layer of the registered class ``class_name`` from its ``get_config()`` dict."""
    return layer_class(class_name).from_config(config)


__all__ = ["Layer", "Conv2D", "MaxPool2D", "AvgPool2D", "Dense", "Flatten", "Dropout", "ReLU",
           "Sigmoid", "Softmax", "LAYERS", "REGISTRY", "from_config", "layer_class", "register",
           "Tanh", "LeakyReLU", "ELU", "GELU", "GlobalAveragePooling2D", "Dropout2d", "LogSoftmax"]
