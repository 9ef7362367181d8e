"""Parity with PyTorch: the zoo networks loaded with a torch state_dict give the same outputs,
the same gradients for a cross-entropy loss and the same weights after one Adam step, on every
backend that runs here.

Under Numba's CUDA simulator one full-size forward pass takes minutes, so there the full-size
networks are skipped and only the small network (same layer types) is compared, at batch 2.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from conftest import backend_is_simulated, usable_backends
from fastcnn import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential
from fastcnn.losses import CrossEntropy
from helpers import assert_relative_close

torch = pytest.importorskip("torch", reason="the parity tests need PyTorch (pip install fastcnn[torch])")
nn, F = torch.nn, torch.nn.functional

pytestmark = pytest.mark.torch

TOLERANCE = 1e-4
BACKENDS = usable_backends()


class TutorialCNN(nn.Module):
    """The PyTorch MNIST tutorial's network (zoo.pytorch_cnn)."""

    def __init__(self, c1=32, c2=64, hidden=128, size=28, classes=10):
        super().__init__()
        self.conv_1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv_2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.linear_1 = nn.Linear(c2 * (size // 4) ** 2, hidden)
        self.linear_2 = nn.Linear(hidden, classes)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv_1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv_2(x)), 2)
        x = self.dropout(F.relu(self.linear_1(torch.flatten(x, 1))))
        return self.linear_2(x)


def small_tutorial_cnn():
    """zoo.pytorch_cnn's layers at a size the CUDA simulator can run."""
    return Sequential([
        Conv2D(1, 3, 3, padding=1, name="conv_1"), ReLU(), MaxPool2D(2),
        Conv2D(3, 4, 3, padding=1, name="conv_2"), ReLU(), MaxPool2D(2), Flatten(),
        Dense(4 * 2 * 2, 6, name="linear_1"), ReLU(), Dropout(0.5), Dense(6, 5, name="linear_2"),
    ], seed=0, input_shape=(1, 8, 8))


class KerasKFoldCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3)
        self.dense = nn.Linear(32 * 13 * 13, 100)
        self.output = nn.Linear(100, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return F.softmax(self.output(F.relu(self.dense(torch.flatten(x, 1)))), dim=1)


class KmnistCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.dense = nn.Linear(64 * 12 * 12, 128)
        self.output = nn.Linear(128, 10)

    def forward(self, x):  # eval mode: the two dropouts are the identity
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        return F.softmax(self.output(F.relu(self.dense(torch.flatten(x, 1)))), dim=1)


def batch(n, size=28, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, size, size), dtype=np.float32), rng.integers(0, classes, n)


def torch_twin(net, model):
    """net with fresh torch initial weights loaded into the fastcnn model; net in eval mode."""
    model.load_state_dict(net.state_dict())
    return net.eval()


def check_forward_gradients_and_adam_step(model, net, x, y):
    out = fastcnn.to_numpy(model.forward(x, training=False)).copy()
    loss = CrossEntropy()
    value = loss(model.forward(x, training=False), y)
    model.backward(loss.backward())

    torch_out = net(torch.from_numpy(x))
    torch_loss = F.cross_entropy(torch_out, torch.from_numpy(y).long())
    torch_loss.backward()

    assert_relative_close(out, torch_out.detach().numpy(), TOLERANCE, "logits")
    assert value == pytest.approx(torch_loss.item(), rel=TOLERANCE)
    torch_params = dict(net.named_parameters())
    for name, param in model.named_parameters():
        assert_relative_close(fastcnn.to_numpy(param.grad), torch_params[name].grad.numpy(),
                              TOLERANCE, f"d loss / d {name}")

    fastcnn.optim.Adam(model.parameters(), lr=1e-3).step()
    torch.optim.Adam(net.parameters(), lr=1e-3).step()
    for name, param in model.named_parameters():
        assert_relative_close(param.numpy(), torch_params[name].detach().numpy(), TOLERANCE,
                              f"{name} after one Adam step")


@pytest.mark.parametrize("backend", BACKENDS)
def test_pytorch_cnn_matches_torch_outputs_gradients_and_adam_step(backend):
    if backend_is_simulated(backend):
        pytest.skip("a full-size forward pass takes minutes under the CUDA simulator; "
                    "the small network covers cuda here")
    torch.manual_seed(0)
    x, y = batch(2 if backend == "naive" else 8)
    with fastcnn.use_backend(backend):
        model = fastcnn.zoo.pytorch_cnn(seed=1)
        net = torch_twin(TutorialCNN(), model)
        check_forward_gradients_and_adam_step(model, net, x, y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_tutorial_cnn_matches_torch_outputs_gradients_and_adam_step(backend):
    torch.manual_seed(0)
    x, y = batch(2, size=8, classes=5)
    with fastcnn.use_backend(backend):
        model = small_tutorial_cnn()
        net = torch_twin(TutorialCNN(c1=3, c2=4, hidden=6, size=8, classes=5), model)
        check_forward_gradients_and_adam_step(model, net, x, y)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name, module", [("keras_kfold_cnn", KerasKFoldCNN), ("kmnist_cnn", KmnistCNN)])
def test_softmax_zoo_models_match_torch_probabilities(backend, name, module):
    if backend_is_simulated(backend):
        pytest.skip("a full-size forward pass takes minutes under the CUDA simulator")
    torch.manual_seed(0)
    x, _ = batch(2 if backend == "naive" else 8)
    with fastcnn.use_backend(backend):
        model = fastcnn.zoo.get(name, seed=1)
        net = torch_twin(module(), model)
        expected = net(torch.from_numpy(x)).detach().numpy()
        assert_relative_close(fastcnn.to_numpy(model.forward(x)), expected, TOLERANCE, "forward")
        assert_relative_close(model.predict(x), expected, TOLERANCE, "predict")
