"""Layers: every one calls the kernel contract only and never knows which backend runs."""

from .activations import ReLU, Sigmoid, Softmax
from .base import Layer
from .conv import Conv2D
from .dense import Dense, Flatten
from .dropout import Dropout
from .log_softmax import LogSoftmax
from .pooling import AvgPool2D, MaxPool2D

LAYERS = {cls.__name__: cls for cls in
          (Conv2D, MaxPool2D, AvgPool2D, Dense, Flatten, Dropout, ReLU, Sigmoid, Softmax,
           LogSoftmax)}
"""Layer classes by name, for rebuilding a saved model."""


def from_config(class_name: str, config: dict) -> Layer:
    from ..zoo.compat import LAYERS as COMPAT_LAYERS  # the zoo's compat=True quirk layers

    known = {**LAYERS, **COMPAT_LAYERS}
    if class_name not in known:
        raise ValueError(f"unknown layer {class_name!r} in saved model; known: {', '.join(known)}")
    return known[class_name](**config)


__all__ = ["Layer", "Conv2D", "MaxPool2D", "AvgPool2D", "Dense", "Flatten", "Dropout", "ReLU",
           "Sigmoid", "Softmax", "LogSoftmax", "LAYERS", "from_config"]
