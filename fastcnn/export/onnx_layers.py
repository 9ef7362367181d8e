"""One ONNX exporter per layer type: (layer, graph, x) -> the name of the output tensor.

Shapes are those of the layers (NCHW images, (N, F) features); the batch axis stays
symbolic. A layer's main node carries its name; a second node, such as a fused
activation, is called "<layer>/<op>".
"""

from __future__ import annotations

import numpy as np

from ..layers import AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid, Softmax
from ..layers import ELU, GELU, Dropout2d, GlobalAveragePooling2D, LeakyReLU, Tanh
from ..layers import BatchNorm1d, BatchNorm2d, BatchNormalization, LogSoftmax
from ..model import Sequential
from ..zoo.compat import BatchAxisSoftmax, RawPixels
from .onnx_graph import exporter

_ACTIVATION_OPS = {"relu": ("Relu", {}), "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}),
                   "leaky_relu": ("LeakyRelu", {"alpha": 0.2}), "elu": ("Elu", {"alpha": 1.0}),
                   "gelu": ("Gelu", {"approximate": "none"})}
"""Conv2D/Dense ``activation=`` names -> (ONNX op, attributes), as layers.activations runs them."""


def _activation(layer, graph, x: str) -> str:
    """The layer's own ``activation=`` as a node after its main one."""
    if layer.activation is None:
        return x
    op, attributes = _ACTIVATION_OPS[layer.activation]
    return graph.node(op, [x], f"{layer.name}/{layer.activation}", **attributes)


@exporter(Conv2D)
def conv2d(layer, graph, x):
    inputs = [x, graph.weight(layer, "weight")] + ([graph.weight(layer, "bias")] if layer.use_bias else [])
    out = graph.node("Conv", inputs, layer.name, kernel_shape=[layer.kernel_h, layer.kernel_w],
                     strides=[layer.stride] * 2, pads=[layer.padding] * 4, dilations=[1, 1], group=1)
    return _activation(layer, graph, out)


@exporter(Dense)
def dense(layer, graph, x):
    # Gemm computes x @ weight.T (+ bias) with weight kept (out, in), as fastcnn stores it
    inputs = [x, graph.weight(layer, "weight")] + ([graph.weight(layer, "bias")] if layer.use_bias else [])
    return _activation(layer, graph, graph.node("Gemm", inputs, layer.name, transB=1))


@exporter(Flatten)
def flatten(layer, graph, x):
    return graph.node("Flatten", [x], layer.name, axis=1)


def _pool_attributes(layer) -> dict:
    return {"kernel_shape": [layer.kernel_size] * 2, "strides": [layer.stride] * 2,
            "pads": [layer.padding] * 4, "ceil_mode": 0}


@exporter(MaxPool2D)
def max_pool2d(layer, graph, x):
    return graph.node("MaxPool", [x], layer.name, **_pool_attributes(layer))


@exporter(AvgPool2D)
def avg_pool2d(layer, graph, x):
    # fastcnn divides every window by kernel_size**2, padding included
    return graph.node("AveragePool", [x], layer.name, count_include_pad=1, **_pool_attributes(layer))


@exporter(Dropout)
def dropout(layer, graph, x):
    # ONNX's Dropout is the identity at inference (training_mode defaults to false)
    ratio = graph.constant(f"{layer.name}.ratio", np.float32(layer.p))
    return graph.node("Dropout", [x, ratio], layer.name)


@exporter(Dropout2d)
def dropout2d(layer, graph, x):
    return dropout(layer, graph, x)


@exporter(GlobalAveragePooling2D)
def global_average_pooling2d(layer, graph, x):
    pooled = graph.node("GlobalAveragePool", [x], f"{layer.name}/pool")  # (N, C, 1, 1)
    return graph.node("Flatten", [pooled], layer.name, axis=1)


@exporter(Tanh)
def tanh(layer, graph, x):
    return graph.node("Tanh", [x], layer.name)


@exporter(LeakyReLU)
def leaky_relu(layer, graph, x):
    return graph.node("LeakyRelu", [x], layer.name, alpha=layer.negative_slope)


@exporter(ELU)
def elu(layer, graph, x):
    return graph.node("Elu", [x], layer.name, alpha=layer.alpha)


@exporter(GELU)
def gelu(layer, graph, x):
    return graph.node("Gelu", [x], layer.name, approximate=layer.approximate)


@exporter(ReLU)
def relu(layer, graph, x):
    return graph.node("Relu", [x], layer.name)


@exporter(Sigmoid)
def sigmoid(layer, graph, x):
    return graph.node("Sigmoid", [x], layer.name)


@exporter(Softmax)
def softmax(layer, graph, x):
    return graph.node("Softmax", [x], layer.name, axis=1)


def batch_norm(layer, graph, x):
    """Inference mode: the running statistics (N, C[, H, W]), as model.forward gives it."""
    state = layer.get_state()
    inputs = [x, graph.weight(layer, "weight"), graph.weight(layer, "bias"),
              graph.constant(f"{layer.name}.running_mean", state["running_mean"]),
              graph.constant(f"{layer.name}.running_var", state["running_var"])]
    return graph.node("BatchNormalization", inputs, layer.name, epsilon=layer.eps)


for _batch_norm_class in (BatchNorm1d, BatchNorm2d, BatchNormalization):
    exporter(_batch_norm_class)(batch_norm)


@exporter(LogSoftmax)
def log_softmax(layer, graph, x):
    return graph.node("LogSoftmax", [x], layer.name, axis=1)


@exporter(Sequential)
def sequential(model, graph, x):
    """A model nested in another: its layers, their names prefixed with its own."""
    with graph.scope(model.name):
        return graph.layers(model.layers, x)


# the zoo's compat=True quirk layers: the tutorial's arithmetic, quirks included
@exporter(RawPixels)
def raw_pixels(layer, graph, x):
    return graph.node("Mul", [x, graph.constant(f"{layer.name}.scale", np.float32(255.0))], layer.name)


@exporter(BatchAxisSoftmax)
def batch_axis_softmax(layer, graph, x):
    return graph.node("Softmax", [x], layer.name, axis=0)
