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
from .normalization import BatchNorm1d, BatchNorm2d, BatchNormalization
from .pooling import AvgPool2D, GlobalAveragePooling2D, MaxPool2D

LAYERS = REGISTRY
"""Layer classes by name, for rebuilding a saved model (the registry itself)."""


def from_config(class_name: str, config: dict) -> Layer:
    """A new layer of the registered class ``class_name`` from its ``get_config()`` dict."""
    return layer_class(class_name).from_config(config)


LAYER_CLASSES = [name for name, value in list(globals().items())
                 if isinstance(value, type) and issubclass(value, Layer)]
"""The layer classes imported above: ``fastcnn`` exports every one of them."""

__all__ = LAYER_CLASSES + ["LAYERS", "REGISTRY", "from_config", "layer_class", "register"]
