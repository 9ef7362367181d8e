"""keras_kfold_cnn as the tutorial ran it: scikit-learn's KFold folds, and a fingerprint of
its recipe (the first steps' losses on fixed data) that any change of learning rate,
momentum, initialisation or batch size moves."""

import numpy as np
import pytest

import fastcnn
from fastcnn.datasets import kfold
from fastcnn.reproduce import Scale, run_article
from helpers import mnist_like

# KFold(5, shuffle=True, random_state=1).split(range(11)), worked out from scikit-learn's
# algorithm: RandomState(1).shuffle(arange(11)) = [2, 3, 4, 9, 1, 6, 0, 7, 10, 8, 5]; fold
# sizes [3, 2, 2, 2, 2] (the first 11 % 5 one larger) cut it in order; each fold is turned
# into a mask, so both index lists come out sorted.
SKLEARN_11_5_SEED_1 = [
    ([0, 1, 5, 6, 7, 8, 9, 10], [2, 3, 4]),
    ([0, 2, 3, 4, 5, 6, 7, 8, 10], [1, 9]),
    ([1, 2, 3, 4, 5, 7, 8, 9, 10], [0, 6]),
    ([0, 1, 2, 3, 4, 5, 6, 8, 9], [7, 10]),
    ([0, 1, 2, 3, 4, 6, 7, 9, 10], [5, 8]),
]

# The first four batch losses of keras_kfold_cnn(seed=0) under its recipe on
# mnist_like(128, seed=0), unshuffled: the first is the initialisation's alone, the
# others move with the learning rate, the momentum and the batch size.
FINGERPRINT = [2.817161798477173, 3.3929457664489746, 2.974982500076294, 3.60418438911438]


def test_sklearn_folds_are_scikit_learns_kfold_indices():
    folds = [(train.tolist(), val.tolist()) for train, val in kfold(11, 5, seed=1, sklearn=True)]
    assert folds == SKLEARN_11_5_SEED_1


def test_sklearn_folds_refuse_what_kfold_cannot_reproduce():
    with pytest.raises(fastcnn.InputError, match="does not stratify"):
        list(kfold(10, 2, sklearn=True, stratify=np.zeros(10, dtype=int)))
    with pytest.raises(fastcnn.InputError, match="int seed"):
        list(kfold(10, 2, sklearn=True, seed=np.random.default_rng(0)))


def test_stratified_folds_spread_every_class_evenly():
    y = np.repeat([0, 1, 2], [13, 7, 4])
    folds = list(kfold(len(y), 3, seed=2, stratify=y))
    assert np.array_equal(np.sort(np.concatenate([val for _, val in folds])), np.arange(len(y)))
    counts = np.array([np.bincount(y[val], minlength=3) for _, val in folds])
    assert (counts.max(axis=0) - counts.min(axis=0) <= 1).all()


class _BatchLosses(fastcnn.Callback):
    def __init__(self):
        self.losses = []

    def on_batch_end(self, batch, logs=None):
        self.losses.append(logs["batch_loss"])


def _first_losses(model=None, **recipe_changes):
    x, y = mnist_like(128, seed=0)
    recipe = fastcnn.zoo.recipe("keras_kfold_cnn", **recipe_changes)
    model = model or fastcnn.zoo.get("keras_kfold_cnn", seed=0)
    model.compile(recipe.make_optimizer(), recipe.loss)
    losses = _BatchLosses()
    model.fit(x, y, epochs=1, batch_size=recipe.batch_size, shuffle=False, callbacks=[losses],
              verbose=0)
    return losses.losses


def test_the_recipe_gives_its_fingerprint():
    assert _first_losses() == pytest.approx(FINGERPRINT, rel=1e-5)


@pytest.mark.parametrize("change", [{"lr": 0.011}, {"optimizer_args": {"momentum": 0.8}},
                                    {"batch_size": 30}])
def test_a_changed_recipe_misses_the_fingerprint(change):
    losses = _first_losses(**change)
    assert losses[:4] != pytest.approx(FINGERPRINT, rel=1e-5)


def test_a_changed_initialisation_misses_the_fingerprint():
    model = fastcnn.zoo.get("keras_kfold_cnn", seed=0)
    model.load_state_dict({name: value * 1.01 for name, value in model.state_dict().items()})
    assert _first_losses(model)[0] != pytest.approx(FINGERPRINT[0], rel=1e-5)


def test_the_reproduction_scores_the_sklearn_folds(tmp_path, data_dir):
    result = run_article("keras_kfold_cnn", Scale(train=60, test=20, epochs=1), out=tmp_path,
                         verbose=0)
    (x, y), _ = fastcnn.datasets.load("mnist")
    order = np.arange(60)
    np.random.RandomState(1).shuffle(order)  # scikit-learn's KFold, written out again
    folds = [(np.setdiff1d(np.arange(60), part), np.sort(part)) for part in np.split(order, 5)]
    expected = fastcnn.cross_validate("keras_kfold_cnn", x[:60], y[:60], cv=folds,
                                      fit={"epochs": 1}, seed=0, progress=False)
    assert result.runs[0].measured["fold_accuracies"] == expected.scores["val_accuracy"].tolist()
    final = result.runs[1].measured
    assert (final["train_images"], final["test_images"]) == (60, 20)
