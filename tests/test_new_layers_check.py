"""Tanh, LeakyReLU, ELU, GELU, GlobalAveragePooling2D, padded MaxPool2D/AvgPool2D, Dropout2d
and Conv2D/Dense with the new activation names, each through check_layer on every backend:
config round trip, save/load, finite differences, PyTorch parity (forward, gradients, one
SGD step) on identical weights."""

from __future__ import annotations

import pytest
from torch import nn

import fastcnn
from conftest import backend_is_simulated, usable_backends
from layer_check import check_layer

BACKENDS = usable_backends()
F = nn.functional


class ConvThen(nn.Conv2d):
    """nn.Conv2d followed by ``act`` (weight and bias under their own names)."""

    def __init__(self, *args, act, **kwargs):
        super().__init__(*args, **kwargs)
        self.act = act

    def forward(self, x):
        return self.act(super().forward(x))


class LinearThen(nn.Linear):
    def __init__(self, *args, act, **kwargs):
        super().__init__(*args, **kwargs)
        self.act = act

    def forward(self, x):
        return self.act(super().forward(x))


IMAGE = (3, 7, 6)
LAYERS = {  # name -> (make, torch twin, per-sample input shape)
    "tanh": (fastcnn.Tanh, nn.Tanh, IMAGE),
    "leaky_relu": (lambda: fastcnn.LeakyReLU(0.2), lambda: nn.LeakyReLU(0.2), IMAGE),
    "elu": (lambda: fastcnn.ELU(0.7), lambda: nn.ELU(0.7), IMAGE),
    "gelu": (fastcnn.GELU, nn.GELU, IMAGE),
    "gelu_tanh": (lambda: fastcnn.GELU("tanh"), lambda: nn.GELU("tanh"), IMAGE),
    "global_average_pooling": (fastcnn.GlobalAveragePooling2D,
                               lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), IMAGE),
    "padded_max_pool": (lambda: fastcnn.MaxPool2D(3, strides=2, padding=1),
                        lambda: nn.MaxPool2d(3, 2, padding=1), IMAGE),
    "padded_avg_pool": (lambda: fastcnn.AvgPool2D(pool_size=2, strides=1, padding=1),
                        lambda: nn.AvgPool2d(2, 1, padding=1), IMAGE),
    "conv_tanh": (lambda: fastcnn.Conv2D(4, 3, padding="same", activation="tanh"),
                  lambda: ConvThen(3, 4, 3, padding=1, act=nn.Tanh()), IMAGE),
    "conv_leaky_relu": (lambda: fastcnn.Conv2D(2, 2, activation="leaky_relu"),
                        lambda: ConvThen(3, 2, 2, act=nn.LeakyReLU(0.2)), IMAGE),
    "dense_elu": (lambda: fastcnn.Dense(5, activation="elu"), lambda: LinearThen(6, 5, act=nn.ELU()),
                  (6,)),
    "dense_gelu": (lambda: fastcnn.Dense(5, activation="gelu"),
                   lambda: LinearThen(6, 5, act=nn.GELU()), (6,)),
}


def _shape(backend, shape):
    """A smaller image under the CUDA simulator (the channels kept: the twins fix them)."""
    if len(shape) == 3 and backend_is_simulated(backend):
        return (shape[0], 4, 4)
    return shape


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_new_layer_passes_check_layer(name, backend, tmp_path):
    make, twin, shape = LAYERS[name]
    # the finite differences run on the float64 numpy reference whatever the backend: once
    check_layer(make, _shape(backend, shape), backend, tmp_path, torch_twin=twin,
                finite_differences=backend == "numpy")


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout2d_passes_check_layer_in_inference(backend, tmp_path):
    # in training its masks are its own (the same on every backend), not PyTorch's
    check_layer(lambda: fastcnn.Dropout2d(0.4), _shape(backend, IMAGE), backend, tmp_path,
                torch_twin=lambda: nn.Dropout2d(0.4), modes=(False,),
                finite_differences=backend == "numpy")
