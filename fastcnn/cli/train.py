"""Train a zoo model on a dataset and report its test accuracy.

Examples:
  fastcnn train --model pytorch_cnn --dataset mnist --epochs 1
  fastcnn train --model kmnist_cnn --checkpoint best.npz --patience 3
  fastcnn train --resume best.npz --epochs 5
"""

from __future__ import annotations

HELP = "train a zoo model and print per-epoch progress and the test accuracy"


def add_arguments(parser) -> None:
    from ..zoo import names

    parser.add_argument("--model", choices=names(), default="pytorch_cnn", help="zoo architecture")
    parser.add_argument("--dataset", choices=("mnist", "fashion-mnist", "kmnist"), default=None,
                        help="dataset (default: the model's tutorial dataset)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (default: the recipe's)")
    parser.add_argument("--optimizer", choices=("sgd", "adam", "adadelta"), default=None)
    parser.add_argument("--lr", type=float, default=None, help="learning rate")
    parser.add_argument("--validation-split", type=float, default=None,
                        help="hold out this fraction of the training images for validation "
                             "(default: the tutorial's split)")
    parser.add_argument("--checkpoint", default=None, help="save the best-validation-loss model here")
    parser.add_argument("--patience", type=int, default=None, help="early stopping patience (epochs)")
    parser.add_argument("--resume", default=None, help="continue training a saved model")
    parser.add_argument("--save", default=None, help="save the final model here (.npz)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--compat", action="store_true",
                        help="numpy_mlp only: reproduce the tutorial's quirks")
    parser.add_argument("--quiet", action="store_true", help="no progress bar; one line per epoch")


def run(args) -> int:
    from .. import backend_name, load_model
    from ..zoo import recipe as get_recipe
    from ..zoo.runner import Splits, load_splits, run as run_recipe

    recipe = get_recipe(args.model, compat=args.compat, epochs=args.epochs,
                        batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                        dataset=args.dataset)
    if args.optimizer and args.optimizer != get_recipe(args.model).optimizer:
        recipe = recipe.replace(optimizer_args={})
    model = None
    if args.resume:
        model = load_model(args.resume)
        if args.lr is not None and model.optimizer is not None:
            model.optimizer.lr = args.lr
        if model.optimizer is None:
            model.compile(recipe.make_optimizer(), recipe.loss)
    splits = load_splits(recipe, seed=args.seed, limit=args.limit)
    if args.validation_split:
        from ..datasets import train_val_split

        (x, y), (xv, yv) = train_val_split(splits.x_train, splits.y_train,
                                           val_size=args.validation_split, seed=args.seed)
        splits = Splits(x, y, xv, yv, splits.x_test, splits.y_test)
    print(f"training {recipe.model} on {recipe.dataset} ({len(splits.x_train):,} images) with the "
          f"{backend_name()} backend: {recipe.optimizer} lr {recipe.lr}, batch {recipe.batch_size}, "
          f"{recipe.epochs} epochs", flush=True)
    result = run_recipe(recipe, splits, model=model, seed=args.seed, verbose=2 if args.quiet else 1,
                        checkpoint=args.checkpoint, patience=args.patience, compat=args.compat)
    if args.save:
        result.model.save(args.save)
        print(f"saved the model to {args.save}")
    samples = len(splits.x_train) * result.epochs_run
    print(f"trained {result.epochs_run} epochs in {result.seconds:.1f} s "
          f"({samples / max(result.seconds, 1e-9):,.0f} samples/s)")
    print(f"test accuracy: {result.test['accuracy'] * 100:.2f}%  (test loss {result.test['loss']:.4f}, "
          f"{len(splits.x_test):,} images)")
    return 0
