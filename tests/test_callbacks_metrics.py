"""Callbacks (ModelCheckpoint, EarlyStopping, RocAuc, user hooks, progress output) and
the metrics (ROC AUC, confusion matrix, per-class accuracy)."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastcnn
from fastcnn import Callback, EarlyStopping, ModelCheckpoint, RocAuc, metrics
from helpers import numpy_backend, small_cnn, toy_images  # noqa: F401

pytestmark = pytest.mark.usefixtures("numpy_backend")


class ScriptedLog(Callback):
    """Overwrites a log value with a scripted sequence, so monitored values are known."""

    def __init__(self, key, values):
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


class WeightRecorder(Callback):
    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch + 1] = self.model.get_weights()


def fit(callbacks, epochs, **options):
    x, y = toy_images(32)
    x_val, y_val = toy_images(16, seed=1)
    model = small_cnn().compile(fastcnn.optim.Adam(lr=1e-2))
    history = model.fit(x, y, epochs=epochs, batch_size=16, validation_data=(x_val, y_val),
                        callbacks=callbacks, verbose=0, **options)
    return model, history


# ---- ModelCheckpoint ---------------------------------------------------------------------------


def test_model_checkpoint_save_best_only_writes_only_on_improvement(tmp_path):
    path = tmp_path / "best.npz"
    writes = []

    class FileWatcher(Callback):
        def on_epoch_end(self, epoch, logs=None):
            stat = os.stat(path) if path.exists() else None
            writes.append(None if stat is None else (stat.st_ino, stat.st_mtime_ns))

    script = ScriptedLog("val_loss", [1.0, 0.8, 0.9, 0.7, 0.75])
    checkpoint = ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    fit([script, checkpoint, FileWatcher()], epochs=5)
    changed = [i + 1 for i in range(5) if writes[i] != (writes[i - 1] if i else None)]
    assert changed == [1, 2, 4]
    assert checkpoint.best == 0.7 and checkpoint.best_epoch == 4
    assert fastcnn.load_model(path).epoch == 4


def test_model_checkpoint_fills_the_epoch_into_the_path_and_the_file_loads(tmp_path):
    recorder = WeightRecorder()
    checkpoint = ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}.npz", monitor="val_accuracy",
                                 save_best_only=True)
    script = ScriptedLog("val_accuracy", [0.5, 0.4, 0.6])
    fit([script, checkpoint, recorder], epochs=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-01.npz", "ckpt-03.npz"]
    loaded = fastcnn.load_model(tmp_path / "ckpt-01.npz")
    for a, b in zip(loaded.get_weights(), recorder.weights[1]):
        assert np.array_equal(a, b)


def test_model_checkpoint_without_save_best_only_writes_every_epoch(tmp_path):
    fit([ModelCheckpoint(tmp_path / "e{epoch}.npz")], epochs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e1.npz", "e2.npz"]


@pytest.mark.parametrize("make", [
    lambda path: ModelCheckpoint(path / "m.npz", save_best_only=True),
    lambda path: ModelCheckpoint(path / "m-{val_loss:.3f}.npz"),
    lambda path: EarlyStopping("val_loss", patience=2),
    lambda path: fastcnn.ReduceLROnPlateau("val_loss"),
], ids=["checkpoint-best", "checkpoint-path-key", "early-stopping", "reduce-lr"])
def test_monitoring_a_value_that_is_not_logged_is_refused_before_an_epoch_is_spent(tmp_path, make):
    x, y = toy_images(8)
    model = small_cnn().compile()
    before = model.get_weights()
    with pytest.raises(fastcnn.InputError, match="val_loss.*logs loss, accuracy.*validation_split="):
        model.fit(x, y, callbacks=[make(tmp_path)], verbose=0)
    assert model.epoch == 0 and list(tmp_path.iterdir()) == []
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


# ---- EarlyStopping --------------------------------------------------------------------------


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    stopper = EarlyStopping(monitor="val_loss", patience=1)
    recorder = WeightRecorder()
    model, history = fit([ScriptedLog("val_loss", [1.0, 0.5, 0.6, 0.7, 0.1, 0.1]), stopper, recorder],
                         epochs=6)
    assert len(history.history["loss"]) == 4 and model.epoch == 4
    assert stopper.stopped_epoch == 4 and stopper.best_epoch == 2
    for a, b in zip(model.get_weights(), recorder.weights[4]):  # the last epoch's weights kept
        assert np.array_equal(a, b)


def test_early_stopping_restore_best_weights_puts_back_the_best_epoch():
    stopper = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    recorder = WeightRecorder()
    model, _ = fit([ScriptedLog("val_loss", [1.0, 0.5, 0.6, 0.7, 0.1]), stopper, recorder], epochs=5)
    assert model.epoch == 4
    assert not np.array_equal(recorder.weights[2][0], recorder.weights[4][0])
    for a, b in zip(model.get_weights(), recorder.weights[2]):
        assert np.array_equal(a, b)


def test_early_stopping_min_delta_counts_small_gains_as_no_improvement():
    stopper = EarlyStopping(monitor="val_loss", patience=0, min_delta=0.1)
    _, history = fit([ScriptedLog("val_loss", [1.0, 0.95, 0.5]), stopper], epochs=3)
    assert len(history.history["loss"]) == 2


# ---- user callbacks ---------------------------------------------------------------------------


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_batch_begin(self, batch, logs=None):
        self.events.append(("batch_begin", batch))

    def on_batch_end(self, batch, logs=None):
        assert {"loss", "accuracy"} <= set(logs)
        self.events.append(("batch_end", batch))

    def on_epoch_end(self, epoch, logs=None):
        assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(logs)
        self.events.append(("epoch_end", epoch))

    def on_train_end(self, logs=None):
        self.events.append("train_end")


def test_a_callback_subclass_gets_train_epoch_and_batch_hooks_in_order():
    recorder = Recorder()
    x, y = toy_images(10)
    model = small_cnn().compile()
    model.fit(x, y, epochs=2, batch_size=4, validation_data=(x, y), callbacks=[recorder], verbose=0)
    expected = ["train_begin"]
    for epoch in range(2):
        expected.append(("epoch_begin", epoch))
        for batch in range(3):  # ceil(10 / 4)
            expected += [("batch_begin", batch), ("batch_end", batch)]
        expected.append(("epoch_end", epoch))
    expected.append("train_end")
    assert recorder.events == expected
    assert recorder.model is model


def test_a_callback_setting_stop_training_ends_fit_after_that_epoch():
    class StopAtOnce(Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    _, history = fit([StopAtOnce()], epochs=5)
    assert len(history.history["loss"]) == 1


# ---- RocAuc ----------------------------------------------------------------------------------


@pytest.mark.parametrize("one_hot", [False, True])
def test_roc_auc_callback_adds_val_roc_auc_to_the_history(one_hot, capsys):
    x_val, y_val = toy_images(16, seed=1)
    callback = RocAuc(x_val, np.eye(4)[y_val] if one_hot else y_val)
    model, history = fit([callback], epochs=2)
    assert len(history.history["val_roc_auc"]) == 2
    expected = metrics.roc_auc(y_val, model.predict(x_val))
    assert history.history["val_roc_auc"][-1] == pytest.approx(expected)
    assert capsys.readouterr().out.count("val ROC AUC") == 2


# ---- progress output ---------------------------------------------------------------------------


def fit_verbose(verbose, **options):
    x, y = toy_images(8)
    small_cnn().compile().fit(x, y, epochs=2, batch_size=4, verbose=verbose, **options)


def test_verbose_1_draws_a_progress_bar_on_stderr(capsys):
    fit_verbose(1)
    captured = capsys.readouterr()
    assert "epoch 1/2" in captured.err and "epoch 2/2" in captured.err
    assert [line.split(" - ")[0] for line in captured.out.splitlines()] == ["epoch 1/2", "epoch 2/2"]


def test_each_epochs_summary_is_a_line_of_its_own_after_the_bar_with_its_time(capsys, monkeypatch):
    # the bar is cut at the terminal's width: the validation figures must not live in it
    monkeypatch.setenv("COLUMNS", "40")
    x_val, y_val = toy_images(4, seed=1)
    fit_verbose(1, validation_data=(x_val, y_val))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for epoch, line in enumerate(lines, 1):
        assert re.fullmatch(rf"epoch {epoch}/2 - loss: \d\.\d{{4}} - accuracy: \d\.\d{{4}} - "
                            r"val_loss: \d\.\d{4} - val_accuracy: \d\.\d{4} - \d+\.\d s"
                            r"( \(\d+\.\d s of it compiling kernels\))?", line), line


def test_verbose_0_prints_nothing(capsys):
    fit_verbose(0)
    assert capsys.readouterr() == ("", "")


def test_verbose_2_prints_one_line_per_epoch(capsys):
    fit_verbose(2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "loss: " in lines[0] and "accuracy: " in lines[0]


# ---- metrics ----------------------------------------------------------------------------------


def brute_force_auc(positive, scores):
    """Share of (positive, negative) pairs ordered correctly, ties counting half."""
    pos, neg = scores[positive], scores[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return np.nan
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 4), st.integers(0, 4),
                          st.integers(0, 4)), min_size=2, max_size=30))
def test_roc_auc_equals_the_pairwise_count_with_ties_as_half(rows):
    labels = np.array([row[0] for row in rows])
    scores = np.array([row[1:] for row in rows], dtype=np.float64) / 4  # few values: many ties
    per_class = np.array([brute_force_auc(labels == k, scores[:, k]) for k in range(3)])
    np.testing.assert_allclose(metrics.roc_auc(labels, scores, average=None), per_class)
    if not np.isnan(per_class).all():
        assert metrics.roc_auc(labels, scores) == pytest.approx(np.nanmean(per_class))


def two_class(scores):
    scores = np.asarray(scores, dtype=np.float64)
    return np.stack([1 - scores, scores], axis=1)


@pytest.mark.parametrize("labels, scores, expected", [
    ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
    ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.9], 0.75),
    ([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], 1.0),
    ([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4], 0.0),
    ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5),
], ids=["textbook", "ties", "perfect", "reversed", "all-tied"])
def test_roc_auc_hand_computed_cases(labels, scores, expected):
    assert metrics.roc_auc(labels, two_class(scores)) == pytest.approx(expected)


def test_roc_auc_is_nan_for_a_class_absent_from_the_labels_and_the_macro_skips_it():
    labels = np.array([0, 1, 0, 1])
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1]])
    per_class = metrics.roc_auc(labels, scores, average=None)
    assert per_class[:2].tolist() == [1.0, 1.0] and np.isnan(per_class[2])
    assert metrics.roc_auc(labels, scores) == 1.0


def test_confusion_matrix_counts_true_rows_against_predicted_columns():
    y_true = [0, 1, 2, 2, 1]
    y_pred = [0, 2, 2, 2, 0]
    expected = [[1, 0, 0], [1, 0, 1], [0, 0, 2]]
    assert metrics.confusion_matrix(y_true, y_pred).tolist() == expected
    scores = np.eye(3)[y_pred] * 0.8 + 0.05  # probabilities are reduced by argmax
    assert metrics.confusion_matrix(y_true, scores).tolist() == expected
    padded = metrics.confusion_matrix(y_true, y_pred, num_classes=4)
    assert padded.shape == (4, 4) and padded[:3, :3].tolist() == expected and padded.sum() == 5


def test_per_class_accuracy_is_each_class_recall_and_nan_without_samples():
    result = metrics.per_class_accuracy([0, 1, 2, 2, 1], [0, 2, 2, 2, 0], num_classes=4)
    np.testing.assert_array_equal(result[:3], [1.0, 0.0, 1.0])
    assert np.isnan(result[3])


def test_accuracy_accepts_labels_or_scores():
    assert metrics.accuracy([0, 1, 1, 2], [0, 1, 2, 2]) == 0.75
    assert metrics.accuracy([0, 1], np.array([[0.9, 0.1], [0.8, 0.2]])) == 0.5


def test_the_progress_bar_leaves_compiling_out_of_its_rate_and_eta(monkeypatch):
    """Issue 21: a first-ever run's bar showed a 14-hour ETA and a rate that counted a
    minute of compiling in its first step."""
    import types

    from fastcnn import callbacks

    compiled = [0.0]
    monkeypatch.setattr(callbacks, "compile_seconds", lambda: compiled[0])
    bar = callbacks.ProgressBar(verbose=1)
    bar.set_model(types.SimpleNamespace(_fit_state={"epochs": 1, "steps": 100}))
    bar.on_train_begin()
    bar.on_epoch_begin(0)
    bar.bar.start_t -= 100.0  # the first step: 100 s, all of it compiling
    compiled[0] = 100.0
    bar.on_batch_end(0, {"loss": 1.0, "accuracy": 0.5})
    elapsed = bar.bar.format_dict["elapsed"]
    assert 0 <= elapsed < 10
    bar.on_epoch_end(0, {"loss": 1.0})
