"""Taking a trained model out of fastcnn: ONNX, for ONNX Runtime and every tool that reads it.

    model.export_onnx("model.onnx")          # or: fastcnn export model.npz model.onnx

Each layer type has one small exporter function in :mod:`.onnx_layers`; giving a new
layer its ONNX form is one function decorated with ``@exporter(LayerClass)``.
"""

from .onnx_graph import EXPORTERS, OPSET, OnnxGraph, export_onnx, exporter, to_onnx
from . import onnx_layers  # noqa: F401  (registers the built-in layers' exporters)

__all__ = ["OPSET", "export_onnx", "to_onnx", "EXPORTERS", "OnnxGraph", "exporter"]
