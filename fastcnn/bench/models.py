"""Whole-model benchmarks: a training step or an inference pass of every zoo model.

``model_trial`` builds a zoo model (seed 0, its recipe's optimizer and loss) on
one backend; ``torch_model_trial`` builds the same network in PyTorch with the
same initial weights (:func:`torch_network`). Their check compares the loss
and every weight gradient of the first training step (or the inference
output) with the NumPy backend's; for that one step the PyTorch network uses
fastcnn's dropout masks, and ``torch.nn.Dropout`` afterwards.
"""

from __future__ import annotations

import copy
import functools
import zlib

import numpy as np

from .. import zoo
from ..backend import get_backend, use_backend
from ..inputs import as_targets
from ..kernels.contract import conv_output_size, dropout_uniform
from ..layers import (AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid,
                      Softmax)
from ..layers.normalization import _BatchNorm
from ..losses import CrossEntropy
from ..optim import SGD, Adadelta, Adam, AdamW
from .environment import torch_module
from .timing import Trial

MODES = ("train", "infer")


def build(name: str):
    """Zoo model ``name`` (seed 0), compiled with its recipe's optimizer and loss, on the active backend."""
    model = zoo.get(name, seed=0)
    recipe = zoo.recipe(name)
    model.compile(recipe.make_optimizer(), recipe.loss)
    model.optimizer.bind(model.parameters())
    return model


def batch_data(model, n: int):
    """Seeded images (n, 1, 28, 28) in [0, 1) and integer labels (n,) for ``model``."""
    rng = np.random.default_rng(zlib.crc32(model.name.encode()) + n)
    x = rng.random((n,) + model.input_shape, dtype=np.float32)
    y = rng.integers(0, model.output_shape[0], n).astype(np.int32)
    return x, y


def model_trial(name: str, backend: str, n: int, mode: str) -> Trial:
    """Zoo model ``name`` on ``backend``: one training step (mode "train") or one
    inference pass (mode "infer") over a batch of ``n``."""
    with use_backend(backend):
        model = build(name)
        module = get_backend()
        x, y = batch_data(model, n)
        xb = module.to_device(x)
        yb = module.to_device(as_targets(y, model.output_shape[0], model.loss.target_kind, n))
    state = {}

    def train():
        with use_backend(backend):
            state["stats"] = model.train_step(xb, yb)

    def infer():
        with use_backend(backend):
            state["output"] = model.forward(xb)

    def results():
        if mode == "infer":
            return {"output": np.array(module.to_host(state["output"]))}
        found = {"loss": np.array(module.to_host(state["stats"]))[:1]}
        for param_name, param in model.named_parameters(trainable_only=True):
            found[f"{param_name}.grad"] = np.array(module.to_host(param.grad))
        return found

    return Trial(train if mode == "train" else infer, results, getattr(module, "synchronize", None),
                 context=lambda: use_backend(backend))


# ---- PyTorch -------------------------------------------------------------------------------
def _replica_dropout(layer: Dropout):
    """A torch module applying the mask fastcnn's ``layer`` draws on its next training call."""
    torch = torch_module()
    seed = copy.copy(layer).next_seed()
    scale = np.float32(1.0 / (1.0 - layer.p))

    class ReplicaDropout(torch.nn.Module):
        p = layer.p

        def forward(self, x):
            keep = dropout_uniform(seed, x.numel()) >= layer.p
            mask = np.where(keep, scale, np.float32(0)).astype(np.float32).reshape(tuple(x.shape))
            return x * torch.from_numpy(mask)

    return ReplicaDropout()


def _copied_parameters(layer, module) -> list:
    """Copy ``layer``'s parameters into the torch ``module``'s of the same names;
    [(fastcnn parameter name, torch parameter)] of the trainable ones."""
    torch = torch_module()
    pairs = []
    for key, param in layer.params.items():
        target = getattr(module, key)
        with torch.no_grad():
            target.copy_(torch.from_numpy(param.numpy()))
        target.requires_grad_(param.trainable)
        if param.trainable:
            pairs.append((f"{layer.name}.{key}", target))
    return pairs


def torch_network(model, training: bool, replica_dropout: bool = False):
    """(torch.nn.Sequential, [(fastcnn parameter name, torch parameter)]) computing what
    ``model`` computes, with a copy of its current weights. For training with
    cross-entropy a final Softmax is left out (the loss takes logits), as fastcnn does."""
    torch = torch_module()
    nn = torch.nn
    layers = list(model.layers)
    if training and isinstance(model.loss, CrossEntropy) and isinstance(layers[-1], Softmax):
        layers = layers[:-1]
    activations = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
    modules, pairs = [], []
    for layer in layers:
        if isinstance(layer, (Conv2D, Dense)):
            if isinstance(layer, Conv2D):
                module = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                   layer.stride, layer.padding, bias=layer.use_bias)
            else:
                module = nn.Linear(layer.in_features, layer.out_features, bias=layer.use_bias)
            pairs += _copied_parameters(layer, module)
            modules.append(module)
            if layer.activation:
                modules.append(activations[layer.activation]())
        elif isinstance(layer, _BatchNorm):
            kind = nn.BatchNorm2d if len(layer.input_shape) == 3 else nn.BatchNorm1d
            module = kind(layer.num_features, eps=layer.eps, momentum=layer.momentum,
                          affine=layer.affine)
            with torch.no_grad():
                for key, value in layer.get_state().items():
                    getattr(module, key).copy_(torch.from_numpy(np.asarray(value)))
            pairs += _copied_parameters(layer, module) if layer.affine else []
            modules.append(module)
        elif isinstance(layer, (ReLU, Sigmoid)):
            modules.append(activations["relu" if isinstance(layer, ReLU) else "sigmoid"]())
        elif isinstance(layer, Softmax):
            modules.append(nn.Softmax(dim=1))
        elif isinstance(layer, MaxPool2D):
            modules.append(nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding))
        elif isinstance(layer, AvgPool2D):
            modules.append(nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding))
        elif isinstance(layer, Flatten):
            modules.append(nn.Flatten())
        elif isinstance(layer, Dropout):
            modules.append(_replica_dropout(layer) if replica_dropout else nn.Dropout(layer.p))
        else:
            raise ValueError(f"no PyTorch equivalent for {layer.describe()}")
    return nn.Sequential(*modules), pairs


def torch_optimizer(optimizer, params):
    """The torch.optim optimizer with the hyper-parameters of fastcnn's ``optimizer``."""
    torch = torch_module()
    if isinstance(optimizer, Adam) and not isinstance(optimizer, AdamW):
        return torch.optim.Adam(params, lr=optimizer.lr, betas=(optimizer.beta1, optimizer.beta2),
                                eps=optimizer.eps, weight_decay=optimizer.weight_decay)
    if isinstance(optimizer, SGD):
        return torch.optim.SGD(params, lr=optimizer.lr, momentum=optimizer.momentum,
                               nesterov=optimizer.nesterov, weight_decay=optimizer.weight_decay)
    if isinstance(optimizer, Adadelta):
        return torch.optim.Adadelta(params, lr=optimizer.lr, rho=optimizer.rho, eps=optimizer.eps)
    raise ValueError(f"no PyTorch equivalent for the {optimizer.name} optimizer")


def torch_schedule(schedule, optimizer, total_steps: int):
    """torch's counterpart of the fastcnn ``schedule`` (None: none) on the torch ``optimizer``,
    stepped after every batch; ``total_steps`` where the schedule leaves it to fit."""
    if schedule is None:
        return None
    from ..schedules import OneCycleLR

    torch = torch_module()
    if isinstance(schedule, OneCycleLR) and schedule.interval == "batch":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=schedule.max_lr, total_steps=schedule.total_steps or total_steps,
            pct_start=schedule.pct_start, anneal_strategy=schedule.anneal_strategy,
            cycle_momentum=schedule.cycle_momentum, base_momentum=schedule.base_momentum,
            max_momentum=schedule.max_momentum, div_factor=schedule.div_factor,
            final_div_factor=schedule.final_div_factor, three_phase=schedule.three_phase)
    raise ValueError(f"no PyTorch equivalent here for {type(schedule).__name__} "
                     f"(interval {schedule.interval!r})")


def torch_loss(spec):
    """torch's counterpart of the fastcnn loss ``spec`` (a name, config dict or Loss) on logits."""
    from ..losses import get

    torch = torch_module()
    loss = get(spec)
    if isinstance(loss, CrossEntropy):
        return torch.nn.CrossEntropyLoss(label_smoothing=getattr(loss, "label_smoothing", 0.0))
    raise ValueError(f"no PyTorch equivalent here for the {type(loss).__name__} loss")


def torch_model_trial(name: str, n: int, mode: str) -> Trial:
    """Zoo model ``name`` in PyTorch, same weights and batch as :func:`model_trial`."""
    torch = torch_module()
    with use_backend("numpy"):
        model = build(name)
    x, y = batch_data(model, n)
    xt = torch.from_numpy(x)
    state = {}
    if mode == "infer":
        network, _ = torch_network(model, training=False)
        network.eval()

        def infer():
            with torch.no_grad():
                state["output"] = network(xt)

        return Trial(infer, lambda: {"output": state["output"].numpy().copy()})

    network, pairs = torch_network(model, training=True, replica_dropout=True)
    network.train()
    if isinstance(model.loss, CrossEntropy):
        loss_fn, target = torch.nn.CrossEntropyLoss(), torch.from_numpy(y.astype(np.int64))
    else:
        loss_fn = torch.nn.MSELoss()
        target = torch.from_numpy(as_targets(y, model.output_shape[0], "one_hot", n))
    optimizer = torch_optimizer(model.optimizer, [param for _, param in pairs])

    def train():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(network(xt), target)
        loss.backward()
        optimizer.step()
        state["loss"] = loss

    def results():
        found = {"loss": np.array([state["loss"].item()], np.float32)}
        found.update({f"{key}.grad": param.grad.numpy().copy() for key, param in pairs})
        return found

    def native_dropout():
        """Checked with fastcnn's masks; timed with PyTorch's own dropout."""
        for index, module in enumerate(network):
            if type(module).__name__ == "ReplicaDropout":
                network[index] = torch.nn.Dropout(module.p)

    return Trial(train, results, after_check=native_dropout)


@functools.lru_cache(maxsize=None)
def _layers(name: str) -> tuple:
    """The leaf layers of zoo model ``name`` (built once, on the numpy backend), in run
    order: what min_batch and model_flops read."""
    with use_backend("numpy"):
        model = zoo.get(name, seed=0)
    return tuple(layer for _, layer in model.named_layers())


def min_batch(name: str, mode: str) -> int:
    """The smallest batch a training step (or inference pass) of zoo model ``name`` runs
    at: 2 where a layer trains on batch statistics (BatchNorm)."""
    if mode != "train":
        return 1
    return max(layer.min_training_batch for layer in _layers(name))


def model_flops(name: str, n: int, mode: str) -> float:
    """Useful floating-point operations of one training step or inference pass at batch ``n``:
    the GEMMs of every convolution and dense layer (2 per multiply-add). Backward
    passes count the weight gradient of trainable layers and the input gradient of
    every layer after the first trainable one, which is what the model computes."""
    gemm_layers = [layer for layer in _layers(name) if isinstance(layer, (Conv2D, Dense))]
    first_trained = next((i for i, layer in enumerate(gemm_layers) if layer.trainable), len(gemm_layers))
    total = 0.0
    for index, layer in enumerate(gemm_layers):
        if isinstance(layer, Conv2D):
            c, h, w = layer.input_shape
            oh = conv_output_size(h, layer.kernel_size, layer.stride, layer.padding)
            ow = conv_output_size(w, layer.kernel_size, layer.stride, layer.padding)
            gemm = 2.0 * n * layer.out_channels * c * layer.kernel_size ** 2 * oh * ow
        else:
            gemm = 2.0 * n * layer.in_features * layer.out_features
        total += gemm
        if mode == "train":
            total += gemm * (layer.trainable and index >= first_trained)
            total += gemm * (index > first_trained)
    return total
