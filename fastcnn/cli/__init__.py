"""The ``fastcnn`` command line: ``fastcnn <command> --help`` for each command.

Every command takes ``--backend``. Errors print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("train", "evaluate", "predict", "datasets", "reproduce", "bench", "cv", "sweep", "export",
            "serve")
"""Sub-commands, each a module ``fastcnn.cli.<name>`` with ``add_arguments`` and ``run``."""

EXIT_ERROR = 2


def common_options() -> argparse.ArgumentParser:
    from ..backend import CHOICES

    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--backend", choices=CHOICES, default=None,
                        help="kernel backend (default: $FASTCNN_BACKEND or auto, the fastest that works)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastcnn", description="Train classic MNIST CNNs with "
                                     "compiled kernels; compare backends.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="command", required=True)
    parent = common_options()
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # command not shipped in this build
            raise
        command = sub.add_parser(name, parents=[parent], help=module.HELP, description=module.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def _version() -> str:
    from .. import __version__

    return f"fastcnn {__version__}"


def main(argv=None) -> int:
    from ..errors import FastCNNError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.backend:
            from ..backend import set_backend

            set_backend(args.backend)
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("fastcnn: interrupted", file=sys.stderr)
        return 130
    except (FastCNNError, FileNotFoundError, IsADirectoryError, PermissionError, ValueError,
            FloatingPointError, RuntimeError) as exc:
        print(f"fastcnn {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ImportError as exc:  # an optional extra (onnx, serve) that is not installed
        print(f"fastcnn {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
