"""Write a saved model as an ONNX file, for ONNX Runtime (C++, C#, Java, JavaScript, mobile)
and every tool that reads ONNX.

The graph takes "input" (batch, C, H, W) float32 and gives "output" (batch, classes):
the model's logits when it ends in them, class probabilities with --probabilities
(or when its last layer is a Softmax). Nodes carry the layers' names.

Examples:
  fastcnn export model.npz model.onnx
  fastcnn export model.npz model.onnx --probabilities
"""

from __future__ import annotations

HELP = "write a saved model as an ONNX file (ONNX Runtime, any ONNX tool)"


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a model saved by fastcnn (.npz)")
    parser.add_argument("output", help="the ONNX file to write (.onnx)")
    parser.add_argument("--probabilities", action="store_true",
                        help="end a model that outputs logits with a Softmax, so the ONNX graph "
                             "gives what `fastcnn predict` shows")


def run(args) -> int:
    from ..export import OPSET
    from .evaluate import load_saved_model

    model = load_saved_model(args.model)
    path = model.export_onnx(args.output, probabilities=args.probabilities)
    print(f"wrote {path}: {model.title}, {len(model.layers)} layers, ONNX opset {OPSET}, "
          f"input (batch, {', '.join(map(str, model.input_shape))}) -> output "
          f"(batch, {', '.join(map(str, model.output_shape))})")
    return 0
