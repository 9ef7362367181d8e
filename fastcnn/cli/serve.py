"""Serve a saved model on a local web page: draw a character with the mouse or a finger, or
drop a picture of one, and see at once the top classes with their probabilities and the
feature maps of every convolution.

The page lists the model's own dataset's class names (KMNIST's hiragana, Fashion-MNIST's
garments) and runs on the backend chosen with --backend, FASTCNN_BACKEND or auto. It
listens on localhost, on a free port unless --port says otherwise, and prints its URL.

Examples:
  fastcnn serve model.npz
  fastcnn serve fashion.npz --dataset fashion-mnist --port 8000
"""

from __future__ import annotations

HELP = "a local web page to draw a character on and see the model classify it"


def add_arguments(parser) -> None:
    from .evaluate import add_dataset_option

    parser.add_argument("model", help="a model saved by fastcnn (.npz)")
    add_dataset_option(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=0,
                        help="the port to listen on (default 0: a free one the system picks)")


def run(args) -> int:
    from ..backend import backend_name
    from ..errors import InputError
    from .evaluate import load_saved_model

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be between 0 and 65535, got {args.port}")
    from ..serve import bind, create_app
    from ..serve import run as serve_forever

    model = load_saved_model(args.model)
    app = create_app(model, args.dataset)
    sock, url = bind(args.host, args.port)
    print(f"serving {model.title} ({args.model}) with the {backend_name()} backend at {url}\n"
          "press Ctrl+C to stop", flush=True)
    serve_forever(app, sock)
    return 0
