"""Cross-validate a zoo model on a dataset's training images: one score per fold,
then the mean ± std, as the Keras K-fold tutorial reports it.

Examples:
  fastcnn cv --model keras_kfold_cnn --folds 5 --executor local
  fastcnn cv --model keras_kfold_cnn --limit 2000 --epochs 1 --executor dask
  fastcnn cv --model keras_kfold_cnn --executor tcp://scheduler:8786   # a running cluster

--executor: none (this process, the default), local (a process per core), dask
(a LocalCluster, or the cluster DASK_SCHEDULER_ADDRESS names) or a scheduler address.
"""

from __future__ import annotations

HELP = "cross-validate a zoo model (fold scores, mean ± std) in-process, on local processes or on Dask"


def add_data_arguments(parser, folds: int) -> None:
    """The options cv and sweep share: model, data, folds, seed and executor."""
    from ..zoo import names
    from .evaluate import add_dataset_option

    parser.add_argument("--model", choices=names(), default="keras_kfold_cnn", help="zoo architecture")
    add_dataset_option(parser, help="mnist, fashion-mnist or kmnist (default: the model's "
                       "tutorial dataset)", mismatch=False)
    parser.add_argument("--folds", type=int, default=folds, help=f"folds (default: {folds})")
    parser.add_argument("--stratify", action="store_true", help="same class shares in every fold")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--seed", type=int, default=0, help="seeds the folds and fold i's model (seed + i)")
    parser.add_argument("--executor", default="none",
                        help="none (this process), local, dask, or a scheduler address tcp://host:port")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes for local and a new Dask LocalCluster (default: one per core)")
    parser.add_argument("--retries", type=int, default=2,
                        help="runs of a fold after its worker died, before giving up (default: 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def executor_of(args):
    """None for in-process, else the --executor text (checked by get_executor)."""
    return None if args.executor.lower() in ("none", "in-process", "inprocess") else args.executor


def where(args) -> str:
    return "in this process" if executor_of(args) is None else f"on {args.executor}"


def training_images(args):
    """The model's (or --dataset's) training images and labels, the first --limit of them."""
    from ..datasets import load
    from ..datasets.registry import canonical_name
    from ..errors import InputError
    from ..zoo import recipe

    if args.limit is not None and args.limit < 2:
        raise InputError(f"--limit must be at least 2, got {args.limit}")
    dataset = canonical_name(args.dataset or recipe(args.model).dataset)
    x, y = load(dataset, "train", progress=not args.quiet)
    return dataset, x[:args.limit], y[:args.limit]


def add_arguments(parser) -> None:
    add_data_arguments(parser, folds=5)
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fold (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (default: the recipe's)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the recipe's)")


def run(args) -> int:
    from .. import backend_name
    from ..distributed import cross_validate
    from ..wording import count
    from ..zoo import recipe as get_recipe

    dataset, x, y = training_images(args)
    recipe = get_recipe(args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
    print(f"cross-validating {args.model} on {dataset} ({len(x):,} images, {args.folds} folds) with "
          f"the {backend_name()} backend {where(args)}: {recipe.optimizer} lr {recipe.lr}, "
          f"batch {recipe.batch_size}, {count(recipe.epochs, 'epoch')} per fold",
          flush=True)
    result = cross_validate(args.model, x, y, cv=args.folds, seed=args.seed,
                            fit={"epochs": recipe.epochs, "batch_size": recipe.batch_size},
                            params={"lr": recipe.lr}, executor=executor_of(args),
                            retries=args.retries, progress=not args.quiet, stratify=args.stratify,
                            workers=args.workers)
    print("| fold | val_accuracy | val_loss | train_loss | fit time | worker |")
    print("|---:|---:|---:|---:|---:|---|")
    for fold in range(len(result.folds)):
        print(f"| {fold + 1} | {result.scores['val_accuracy'][fold]:.2%} | "
              f"{result.scores['val_loss'][fold]:.4f} | "
              f"{result.scores.get('train_loss', [float('nan')] * len(result.folds))[fold]:.4f} | "
              f"{result.fit_seconds[fold]:.1f} s | {result.workers[fold]} |")
    print(result)
    return 0
