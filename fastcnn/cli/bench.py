"""Benchmark every backend against the naive loops and PyTorch: each kernel at the zoo's
shapes, whole training steps and inference. Every result is checked against the
NumPy reference before it is timed; competitors are timed round-robin and
ratios are medians of per-round ratios.

Examples:
  fastcnn bench                          # --quick: pytorch_cnn's kernels, all training steps
  fastcnn bench --full --out results/    # everything, plus start-up, memory, step breakdown
  fastcnn bench --backends numba,torch --threads 2
"""

from __future__ import annotations

import argparse
import shlex

HELP = "benchmark the backends against the naive loops and PyTorch; write JSON, Markdown and a chart"


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(size) for size in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected batch sizes like 16,256, got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text!r}")
    return sizes


def add_arguments(parser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="pytorch_cnn's kernels, every training step, one inference, fit() "
                           "epochs on 12,800 MNIST images beside busy processes, the first-ever "
                           "run (default; a few minutes)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="every zoo kernel and model, start-up, compile time, memory, breakdown")
    parser.set_defaults(mode="quick")
    parser.add_argument("--backends", type=_names, default=None, metavar="A,B,...",
                        help="competitors to run: backend names and 'torch' (default: every "
                             "backend that runs here, and torch if installed)")
    parser.add_argument("--models", type=_names, default=None, metavar="A,B,...",
                        help="zoo models to benchmark (default: all)")
    parser.add_argument("--batch-size", type=int, default=64, help="training and kernel batch (64)")
    parser.add_argument("--infer-batch-size", type=int, default=1000, help="inference batch (1000)")
    parser.add_argument("--extra-batch-sizes", type=_sizes, default=None, metavar="A,B,...",
                        help="also time every training step at these batch sizes (default: "
                             "16,256 with --full, none with --quick)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every competitor (default: all cores)")
    parser.add_argument("--repeat", type=int, default=None, help="timed rounds per benchmark")
    parser.add_argument("--no-kernels", dest="kernels", action="store_false",
                        help="skip the per-kernel benchmarks")
    parser.add_argument("--no-felt", dest="felt", action="store_false",
                        help="skip the whole fit() epochs (beside busy processes) and the "
                             "first-ever run")
    parser.add_argument("--felt-images", type=int, default=None, metavar="N",
                        help="those epochs over the first N MNIST training images (default: "
                             "12,800 with --quick, all 60,000 with --full)")
    parser.add_argument("--felt-rounds", type=int, default=None, metavar="R",
                        help="rounds of those epochs (default: 1 with --quick, 3 with --full)")
    parser.add_argument("--out", default="bench-results", metavar="DIR",
                        help="folder for bench.json, bench.md and bench.png (default: bench-results)")


def command_line(args) -> str:
    """The ``fastcnn bench`` command that reproduces this run (options left at their default omitted)."""
    words = ["fastcnn", "bench", f"--{args.mode}"]
    for flag, value, default in (("--backends", args.backends, None), ("--models", args.models, None),
                                 ("--batch-size", args.batch_size, 64),
                                 ("--infer-batch-size", args.infer_batch_size, 1000),
                                 ("--extra-batch-sizes", args.extra_batch_sizes, None),
                                 ("--threads", args.threads, None), ("--repeat", args.repeat, None),
                                 ("--felt-images", getattr(args, "felt_images", None), None),
                                 ("--felt-rounds", getattr(args, "felt_rounds", None), None),
                                 ("--out", args.out, "bench-results")):
        if value != default:
            words += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    if args.backend and not args.backends:
        words += ["--backend", args.backend]
    if not args.kernels:
        words.append("--no-kernels")
    if not getattr(args, "felt", True):
        words.append("--no-felt")
    return " ".join(shlex.quote(word) for word in words)


def run(args) -> int:
    from ..bench import BenchConfig, console_report, run_benchmarks, write_reports

    for flag, value in (("--batch-size", args.batch_size), ("--infer-batch-size", args.infer_batch_size),
                        ("--threads", args.threads), ("--repeat", args.repeat),
                        ("--felt-images", args.felt_images), ("--felt-rounds", args.felt_rounds)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    competitors = args.backends or ([args.backend] if args.backend else None)
    config = BenchConfig(mode=args.mode, competitors=competitors, models=args.models,
                         batch_size=args.batch_size, infer_batch_size=args.infer_batch_size,
                         threads=args.threads, repeat=args.repeat, kernels=args.kernels,
                         extra_batch_sizes=args.extra_batch_sizes, felt=args.felt,
                         overrides={key: value for key, value in (
                             ("felt_images", args.felt_images), ("felt_rounds", args.felt_rounds))
                             if value is not None})
    document = run_benchmarks(config, log=lambda line: print(line, flush=True))
    document["command"] = command_line(args)
    print(console_report(document))
    paths = write_reports(document, args.out)
    *first, last = paths.values()
    print(f"\nwrote {', '.join(first)} and {last} ({document['seconds']:.0f} s)")
    return 0
