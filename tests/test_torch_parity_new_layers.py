"""Parity with PyTorch for the layers past the tutorials: a network of Tanh, ELU, LeakyReLU
and GELU (as activation= and as layers), padded max and average pooling, global average
pooling and Dropout2d, written with Keras' spellings (sizes inferred), gives the outputs,
cross-entropy gradients and Adam step of its PyTorch twin on identical weights, on every
backend that runs here (tiny shapes, so the CUDA simulator runs it too)."""

from __future__ import annotations

import pytest

import fastcnn
from fastcnn import (GELU, AvgPool2D, Conv2D, Dense, Dropout2d, GlobalAveragePooling2D, LeakyReLU,
                     MaxPool2D, Sequential)
from test_torch_parity import BACKENDS, F, batch, check_forward_gradients_and_adam_step, nn, torch

pytestmark = pytest.mark.torch


def new_layers_cnn():
    return Sequential([
        Conv2D(4, 3, padding="same", activation="tanh", name="conv_1"), MaxPool2D(2),
        Dropout2d(0.3),
        Conv2D(5, (3, 3), activation="elu", padding=1, name="conv_2"), LeakyReLU(0.2),
        MaxPool2D(3, strides=1, padding=1), AvgPool2D(pool_size=2, strides=1, padding=1),
        GlobalAveragePooling2D(),
        Dense(6, activation="gelu", name="linear_1"), GELU("tanh"), Dense(5, name="linear_2"),
    ], seed=0, input_shape=(2, 9, 9))


class NewLayersCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_1 = nn.Conv2d(2, 4, 3, padding=1)
        self.conv_2 = nn.Conv2d(4, 5, 3, padding=1)
        self.linear_1 = nn.Linear(5, 6)
        self.linear_2 = nn.Linear(6, 5)
        self.dropout = nn.Dropout2d(0.3)

    def forward(self, x):
        x = self.dropout(F.max_pool2d(torch.tanh(self.conv_1(x)), 2))
        x = F.max_pool2d(F.leaky_relu(F.elu(self.conv_2(x)), 0.2), 3, 1, padding=1)
        x = F.avg_pool2d(x, 2, 1, padding=1)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.linear_2(F.gelu(F.gelu(self.linear_1(x)), approximate="tanh"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_new_layers_cnn_matches_torch_outputs_gradients_and_adam_step(backend):
    torch.manual_seed(0)
    x, y = batch(3, size=9, classes=5)
    x = x.repeat(2, axis=1) - 0.5  # two input channels, negative values for ELU and LeakyReLU
    with fastcnn.use_backend(backend):
        model = new_layers_cnn()
        net = NewLayersCNN()
        model.load_state_dict(net.state_dict())
        check_forward_gradients_and_adam_step(model, net.eval(), x, y)
