"""Train a zoo model on a dataset and report its test accuracy.

Examples:
  fastcnn train --model pytorch_cnn --dataset mnist --epochs 1
  fastcnn train --model kmnist_cnn --checkpoint best.npz --patience 3
  fastcnn train --resume best.npz --epochs 5

--resume continues a saved model with its own architecture, optimizer, dataset and
the recipe of its zoo model, and saves it back to the same file (--save elsewhere
to keep the original, --no-save to keep nothing); --epochs then counts from the start
(train up to that epoch). --model, --optimizer and --compat that disagree with the
file are refused, and so is --dataset unless --allow-other-dataset. A saved learning-rate
schedule goes on from the step it was saved at; --new-schedule starts the recipe's schedule
afresh over the epochs left (at --lr, or the recipe's rate), e.g. after a one-cycle ended.

The test accuracy is always on the whole test set (10,000 images). The PyTorch
tutorial's protocol, which takes 9,000 of those for validation and tests on the
other 1,000, is `fastcnn reproduce pytorch_cnn`'s.
"""

from __future__ import annotations

import sys

HELP = "train a zoo model and print per-epoch progress and the test accuracy"


def add_arguments(parser) -> None:
    from ..optim import OPTIMIZERS
    from ..zoo import names
    from .evaluate import add_dataset_option

    parser.add_argument("--model", choices=names(), default=None,
                        help="zoo architecture (default: pytorch_cnn, or the --resume file's)")
    add_dataset_option(parser, help="mnist, fashion-mnist or kmnist (default: the model's "
                       "tutorial dataset, or the one the --resume file was trained on)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs (default: the recipe's); with --resume, the epoch to train up to")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (default: the recipe's)")
    parser.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default=None,
                        help="optimizer (default: the recipe's)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate")
    parser.add_argument("--validation-split", type=float, default=None,
                        help="hold out this fraction of the training images for validation "
                             "(default: the tutorial's split)")
    parser.add_argument("--checkpoint", default=None, help="save the best-validation-loss model here")
    parser.add_argument("--patience", type=int, default=None, help="early stopping patience (epochs)")
    parser.add_argument("--resume", default=None,
                        help="continue training a saved model (saved back to it unless --save or "
                             "--no-save)")
    parser.add_argument("--save", default=None, help="save the final model here (.npz)")
    parser.add_argument("--new-schedule", action="store_true",
                        help="with --resume: start the recipe's learning-rate schedule afresh "
                             "instead of continuing the file's")
    parser.add_argument("--no-save", action="store_true",
                        help="with --resume: do not save the model back to the file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--compat", action="store_true",
                        help="numpy_mlp only: reproduce the tutorial's quirks")
    parser.add_argument("--quiet", action="store_true", help="no progress bar; one line per epoch")


def _check_arguments(args) -> None:
    from ..errors import InputError

    for flag, value, minimum in (("--limit", args.limit, 1), ("--epochs", args.epochs, 1),
                                 ("--batch-size", args.batch_size, 1), ("--patience", args.patience, 0)):
        if value is not None and value < minimum:
            raise InputError(f"{flag} must be at least {minimum}, got {value}")
    if args.lr is not None and not args.lr > 0:
        raise InputError(f"--lr must be > 0, got {args.lr}")
    if args.validation_split is not None and not 0 < args.validation_split < 1:
        raise InputError(f"--validation-split must be between 0 and 1, got {args.validation_split}")
    if args.new_schedule and not args.resume:
        raise InputError("--new-schedule restarts the schedule of a --resume file: drop it "
                         "(a new training starts its recipe's schedule anyway)")
    if args.no_save and (args.save or not args.resume):
        raise InputError("--no-save only keeps --resume from saving back to its file: "
                         + ("drop --save or --no-save" if args.save else "drop it"))


def _resumed(args):
    """(model, zoo name, compat, dataset) from --resume, refusing flags that contradict the file."""
    from ..errors import InputError
    from ..zoo import MODELS
    from .evaluate import load_saved_model, model_dataset

    model = load_saved_model(args.resume)
    compat = model.title.endswith("_compat")
    name = model.title.removesuffix("_compat")
    if name not in MODELS:
        raise InputError(f"{args.resume} holds a {model.title!r} model, not a zoo model: resume it "
                         "in Python with model.fit(..., initial_epoch=model.epoch)")
    conflicts = []
    if args.model is not None and args.model != name:
        conflicts.append(f"--model {args.model} (the file holds {name})")
    if args.compat and not compat:
        conflicts.append("--compat (the file holds the corrected model)")
    saved_optimizer = model.optimizer.name if model.optimizer is not None else None
    if args.optimizer is not None and saved_optimizer is not None and args.optimizer != saved_optimizer:
        conflicts.append(f"--optimizer {args.optimizer} (the file's optimizer is {saved_optimizer})")
    if conflicts:
        raise InputError(f"--resume continues the saved model as it is; drop {' and '.join(conflicts)}, "
                         "or train a new model without --resume")
    return model, name, compat, model_dataset(model, args.dataset, args.allow_other_dataset)


def _fresh_schedule(recipe):
    """The recipe's schedule, unbound (fit binds it and spans the epochs left), for --new-schedule."""
    from ..errors import InputError

    schedule = recipe.make_schedule()
    if schedule is None:
        raise InputError(f"--new-schedule: the {recipe.model} recipe has no learning-rate "
                         "schedule; drop --new-schedule")
    return schedule


def run(args) -> int:
    from .. import backend_name
    from ..backend import compile_seconds
    from ..errors import InputError
    from ..fileio import check_writable
    from ..wording import count
    from ..zoo import recipe as get_recipe
    from ..zoo.runner import Splits, load_splits, run as run_recipe

    _check_arguments(args)
    save = args.save or (args.resume if args.resume and not args.no_save else None)
    for destination in (save, args.checkpoint):
        if destination:
            check_writable(destination)
    model, name, compat, dataset = None, args.model or "pytorch_cnn", args.compat, args.dataset
    if args.resume:
        model, name, compat, dataset = _resumed(args)
    recipe = get_recipe(name, compat=compat, epochs=args.epochs, batch_size=args.batch_size,
                        lr=args.lr, optimizer=args.optimizer, dataset=dataset)
    if args.optimizer and args.optimizer != get_recipe(name).optimizer:
        recipe = recipe.replace(optimizer_args={})
    if model is not None:
        if model.optimizer is None:
            recipe.compile(model)
        elif args.new_schedule:
            model.schedule = _fresh_schedule(recipe)
            model.optimizer.learning_rate = recipe.lr  # the new schedule's base rate
        elif args.lr is not None:
            if model.schedule is not None:
                raise InputError(f"{args.resume}'s {type(model.schedule).__name__} sets the "
                                 "learning rate: add --new-schedule to restart it at --lr "
                                 f"{args.lr}, or drop --lr")
            model.optimizer.learning_rate = args.lr
        elif model.schedule is None and recipe.schedule:
            print(f"fastcnn train: note: {args.resume} holds no learning-rate schedule (saved "
                  f"by an older fastcnn): training goes on at its last rate, "
                  f"{model.optimizer.lr:g}; --new-schedule restarts the recipe's "
                  f"{recipe.schedule['name']}", file=sys.stderr)
        recipe = recipe.replace(optimizer=model.optimizer.name, lr=model.optimizer.lr)
        if model.epoch >= recipe.epochs:
            raise InputError(f"{args.resume} has trained {count(model.epoch, 'epoch')} already and "
                             f"--epochs counts from the start: pass --epochs {model.epoch + 1} or more")
    splits = load_splits(recipe, seed=args.seed, limit=args.limit, whole_test=True)
    if args.validation_split:
        from ..datasets import train_val_split

        (x, y), (xv, yv) = train_val_split(splits.x_train, splits.y_train,
                                           val_size=args.validation_split, seed=args.seed)
        splits = Splits(x, y, xv, yv, splits.x_test, splits.y_test, splits.dataset)
    if splits.x_val is None and (args.checkpoint or args.patience is not None):
        flags = [flag for flag, value in (("--checkpoint", args.checkpoint),
                                          ("--patience", args.patience)) if value is not None]
        raise InputError(f"{' and '.join(flags)} {'watch' if len(flags) > 1 else 'watches'} the "
                         f"validation loss, and the {name} recipe has no validation split: "
                         "add --validation-split 0.1")
    start = f", from epoch {model.epoch + 1}" if model is not None else ""
    print(f"training {recipe.model} on {splits.dataset} ({count(len(splits.x_train), 'image')}) "
          f"with the {backend_name()} backend: {recipe.describe()}{start}", flush=True)
    compiled = compile_seconds()
    result = run_recipe(recipe, splits, model=model, seed=args.seed,
                        verbose=2 if args.quiet else "auto",
                        checkpoint=args.checkpoint, patience=args.patience, compat=compat)
    compiled = compile_seconds() - compiled
    if save:
        result.model.save(save)
        print(f"saved the model to {save}" + (" (the --resume file)" if save == args.resume else ""))
    if recipe.iterations:
        samples, done = recipe.batch_size * result.epochs_run, count(result.epochs_run, "iteration")
    else:
        samples, done = len(splits.x_train) * result.epochs_run, count(result.epochs_run, "epoch")
    if compiled >= 0.5:  # a rate that counts a first-ever compile says nothing about training
        print(f"trained {done} in {result.seconds:.1f} s, {compiled:.1f} s of it compiling "
              f"kernels ({samples / max(result.seconds - compiled, 1e-9):,.0f} samples/s without)")
    else:
        print(f"trained {done} in {result.seconds:.1f} s "
              f"({samples / max(result.seconds, 1e-9):,.0f} samples/s)")
    print(f"test accuracy: {result.test['accuracy'] * 100:.2f}%  (test loss {result.test['loss']:.4f}, "
          f"{count(len(splits.x_test), 'image')})")
    return 0
