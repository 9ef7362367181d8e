"""Building an ONNX graph from a model with the ``onnx`` package's helpers, layer by layer.

The graph takes ``input`` (batch, *model.input_shape) float32, the batch axis dynamic,
and gives ``output`` (batch, *model.output_shape): what ``model.forward`` gives in
inference mode (logits for a model that ends in them), or with ``probabilities=True``
what ``model.predict`` gives. Nodes carry the layers' names; weights are initializers
named like ``model.state_dict()``'s keys.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ExportError, InputError
from ..fileio import atomic_write

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # pragma: no cover - the extra is part of the test install
    raise ImportError("ONNX export needs the onnx package: pip install 'fastcnn[onnx]'") from None

OPSET = 21
"""The ONNX operator set the graphs use (ONNX 1.16+, ONNX Runtime 1.18+)."""

BATCH = "batch"
"""The symbolic name of the dynamic batch axis."""

EXPORTERS: dict[type, Callable] = {}
"""Layer class -> exporter(layer, graph, x) returning the name of the layer's output tensor."""


def exporter(layer_class: type):
    """Register the decorated function as ``layer_class``'s ONNX exporter.

    The function takes (layer, graph: OnnxGraph, x: name of the input tensor) and returns
    the name of the output tensor, adding nodes with ``graph.node`` and weights with
    ``graph.weight``/``graph.constant``. Lookup is by exact class: a subclass may compute
    something else, so it needs its own exporter."""
    def register(function):
        EXPORTERS[layer_class] = function
        return function
    return register


class OnnxGraph:
    """The nodes and initializers of one graph under construction."""

    def __init__(self):
        self.nodes: list = []
        self.initializers: list = []
        self._node_names: set[str] = set()
        self._tensor_names: set[str] = {"input", "output"}  # the graph's own
        self._scope: list[str] = []

    @staticmethod
    def _unique(name: str, taken: set[str]) -> str:
        base, count = name, 1
        while name in taken:
            count += 1
            name = f"{base}_{count}"
        taken.add(name)
        return name

    def scoped(self, name: str) -> str:
        """``name`` inside the enclosing containers: "block.conv1" for a nested model's layer."""
        return ".".join(self._scope + [name])

    @contextlib.contextmanager
    def scope(self, name: str):
        """Names made inside are prefixed with ``name.`` (a nested container's layers)."""
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def node(self, op_type: str, inputs: list[str], name: str, **attributes) -> str:
        """Add one ``op_type`` node called ``name`` (scoped, made unique); returns the name of
        its output tensor (the node's name where no other tensor has it)."""
        name = self._unique(self.scoped(name), self._node_names)
        output = self._unique(name, self._tensor_names)
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=name, **attributes))
        return output

    def constant(self, name: str, value) -> str:
        """Add an initializer (float32 unless ``value`` is an integer array); returns its name."""
        array = np.asarray(value)
        array = array if array.dtype.kind in "iub" else array.astype(np.float32)
        name = self._unique(self.scoped(name), self._tensor_names)
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def weight(self, layer, key: str) -> str:
        """The layer's parameter ``key`` as an initializer named "<layer>.<key>"."""
        return self.constant(f"{layer.name}.{key}", layer.params[key].numpy())

    def layer(self, layer, x: str) -> str:
        """Export one layer (its class's registered exporter) applied to tensor ``x``."""
        function = EXPORTERS.get(type(layer))
        if function is None:
            known = ", ".join(sorted(cls.__name__ for cls in EXPORTERS))
            raise ExportError(
                f"layer {self.scoped(str(layer.name))!r} ({type(layer).__name__}) has no ONNX form: "
                f"fastcnn exports {known}; replace the layer, or register its exporter with "
                f"@fastcnn.export.exporter({type(layer).__name__})")
        return function(layer, self, x)

    def layers(self, layers, x: str) -> str:
        for layer in layers:
            x = self.layer(layer, x)
        return x


def _tensor_info(name: str, shape) -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH] + [int(s) for s in shape])


def _ends_in_softmax(model) -> bool:
    from ..layers import Softmax

    return isinstance(model.layers[-1], Softmax)


def to_onnx(model, probabilities: bool = False):
    """``model`` (a built Sequential) as an ``onnx.ModelProto``, checked by ``onnx.checker``.

    probabilities: end with a Softmax when the model ends in logits, so the graph gives
    what ``model.predict`` gives (class probabilities) instead of ``model.forward``'s logits.
    ExportError names the first layer that has no ONNX form."""
    from .. import __version__

    if not getattr(model, "built", False):
        raise InputError("cannot export a model that is not built: pass input_shape=... to "
                         "Sequential, or train it first")
    graph = OnnxGraph()
    out = graph.layers(model.layers, "input")
    if probabilities and model.outputs_logits:
        out = graph.node("Softmax", [out], "probabilities", axis=-1)
    if out == "input" or graph.nodes[-1].output[0] != out:
        graph.node("Identity", [out], "output")
    graph.nodes[-1].output[0] = "output"  # the plain name users look for
    onnx_graph = helper.make_graph(graph.nodes, model.title, [_tensor_info("input", model.input_shape)],
                                   [_tensor_info("output", model.output_shape)], graph.initializers)
    opset = [helper.make_opsetid("", OPSET)]
    proto = helper.make_model(onnx_graph, opset_imports=opset, producer_name="fastcnn",
                              producer_version=__version__,
                              doc_string=f"{model.title} exported by fastcnn {__version__}")
    proto.ir_version = helper.find_min_ir_version_for(opset)  # readable by older runtimes
    metadata = {"output": "logits" if model.outputs_logits and not probabilities else
                "probabilities" if model.outputs_logits or _ends_in_softmax(model) else
                "the last layer's output"}
    data_info = getattr(model, "data_info", None)
    if data_info:
        metadata["data"] = json.dumps(data_info, ensure_ascii=False)
    helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path, probabilities: bool = False) -> Path:
    """Write ``model`` to ``path`` as an ONNX file (atomically); see :func:`to_onnx`."""
    proto = to_onnx(model, probabilities=probabilities)
    with atomic_write(path) as handle:
        handle.write(proto.SerializeToString())
    return Path(path)
