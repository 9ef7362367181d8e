"""Sweep a zoo model's learning rate, batch size and epochs: every combination
(or --trials random ones) cross-validated, then a table of all and the best.

Examples:
  fastcnn sweep --model keras_kfold_cnn --lr 1e-3,1e-2 --batch-size 32,128 --executor local
  fastcnn sweep --model keras_kfold_cnn --lr 1e-3,3e-3,1e-2,3e-2 --trials 3 --limit 5000
  fastcnn sweep --model keras_kfold_cnn --lr 1e-3,1e-2 --executor tcp://scheduler:8786

Each value list is comma-separated; an option left out keeps the recipe's value.
"""

from __future__ import annotations

from .cv import add_data_arguments, executor_of, training_images, where

HELP = "grid or random search over lr, batch size and epochs, each trial cross-validated"


def _values(kind):
    def parse(text: str) -> list:
        import argparse

        try:
            values = [kind(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, "
                                             f"got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError("expected at least one value")
        return values
    return parse


def add_arguments(parser) -> None:
    add_data_arguments(parser, folds=3)
    parser.add_argument("--lr", type=_values(float), default=None, help="learning rates, e.g. 1e-3,1e-2")
    parser.add_argument("--batch-size", type=_values(int), default=None, help="batch sizes, e.g. 32,128")
    parser.add_argument("--epochs", type=_values(int), default=None, help="epochs per fold, e.g. 1,3")
    parser.add_argument("--trials", type=int, default=None,
                        help="random search: this many trials drawn from the lists (default: the whole grid)")
    parser.add_argument("--scoring", default="val_accuracy",
                        help="the score that picks the best trial (val_accuracy, val_loss, ...)")


def run(args) -> int:
    from .. import backend_name
    from ..distributed import grid_search, random_search
    from ..errors import InputError

    space = {name: values for name, values in (("lr", args.lr), ("batch_size", args.batch_size),
                                               ("epochs", args.epochs)) if values}
    if not space:
        raise InputError("give at least one of --lr, --batch-size, --epochs to sweep")
    dataset, x, y = training_images(args)
    how = f"{args.trials} random trials" if args.trials else "grid"
    print(f"sweeping {args.model} on {dataset} ({len(x):,} images, {args.folds} folds, {how}) over "
          f"{', '.join(f'{k}={v}' for k, v in space.items())} with the {backend_name()} backend "
          f"{where(args)}", flush=True)
    common = dict(cv=args.folds, seed=args.seed, executor=executor_of(args), retries=args.retries,
                  progress=not args.quiet, stratify=args.stratify, workers=args.workers,
                  scoring=args.scoring)
    if args.trials:
        result = random_search(args.model, space, x, y, n_trials=args.trials, **common)
    else:
        result = grid_search(args.model, space, x, y, **common)
    print(result.table())
    print(f"best: {result.best_params} ({args.scoring} {result.best_score:.4f}) "
          f"in {result.seconds:.1f} s")
    return 0
