"""Reproduce the tutorials: run each zoo model's recipe on its real dataset and write a
Markdown report (report.md, report.json and plots) beside the articles' figures.

Examples:
  fastcnn reproduce all --quick                 # a short smoke run (tiny subsets, 1 epoch)
  fastcnn reproduce keras_kfold_cnn --out reports/kfold
  fastcnn reproduce all --backend numba         # the full recipes: hours on a CPU

A dataset that is not on this machine (say, KMNIST's training images) is reported as
not available, with the reason. Exit status 1 when no requested article could run.
"""

from __future__ import annotations

HELP = "run the tutorials' recipes on the real datasets; write a Markdown report with plots"


def add_arguments(parser) -> None:
    parser.add_argument("articles", nargs="+", metavar="article",
                        help="zoo models whose articles to reproduce "
                             "(pytorch_cnn, keras_kfold_cnn, kmnist_cnn, numpy_mlp, "
                             "fixed_kernel_cnn), or all")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run for CI: 500 training and 300 test images, "
                             "1 epoch per run or fold, 500 full-batch iterations")
    parser.add_argument("--out", default="reports", help="folder for report.md and the plots "
                                                         "(default: reports)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds of numpy_mlp, fixed_kernel_cnn, each keras_kfold_cnn fold and "
                             "kmnist_cnn's benchmark protocol, reported as mean ± std (default: 3 for the full "
                             "recipes, 1 with --quick)")
    parser.add_argument("--quiet", action="store_true", help="print only the report's path")
    parser.add_argument("--executor", default="none",
                        help="where keras_kfold_cnn's folds run: none (this process), local, dask "
                             "or a scheduler address tcp://host:port (see fastcnn cv)")


def run(args) -> int:
    from ..distributed import use_executor
    from ..reproduce import reproduce
    from .cv import executor_of

    with use_executor(executor_of(args)):
        report = reproduce(args.articles, quick=args.quick, out=args.out, seed=args.seed,
                           verbose=0 if args.quiet else 1, seeds=args.seeds)
    if args.quiet:
        print(report.path)
    ran = [result for result in report.articles if result.available]
    return 0 if ran else 1
