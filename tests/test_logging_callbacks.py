"""CSVLogger and the TensorBoard callback: what they write, and their errors."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest

import fastcnn
from fastcnn.errors import InputError
from helpers import small_cnn, toy_images


def _fit(callbacks, epochs=2, validation=True):
    x, y = toy_images(24, seed=0)
    model = small_cnn()
    model.compile("adam", "cross_entropy")
    return model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=callbacks,
                     validation_split=0.25 if validation else 0.0)


def test_csv_logger_writes_one_row_per_epoch_with_keras_columns(tmp_path):
    path = tmp_path / "log.csv"
    history = _fit([fastcnn.CSVLogger(path)])
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [row["epoch"] for row in rows] == ["0", "1"]
    np.testing.assert_allclose([float(row["val_loss"]) for row in rows], history.history["val_loss"])


def test_csv_logger_append_keeps_the_earlier_rows_and_refuses_other_columns(tmp_path):
    path = tmp_path / "log.csv"
    _fit([fastcnn.CSVLogger(path)], epochs=1)
    _fit([fastcnn.CSVLogger(path, append=True)], epochs=1)
    assert len(list(csv.DictReader(path.open()))) == 2
    with pytest.raises(InputError, match="has the columns"):
        _fit([fastcnn.CSVLogger(path, append=True)], epochs=1, validation=False)


def test_tensorboard_writes_train_and_validation_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    history = _fit([fastcnn.TensorBoard(tmp_path, update_freq=2)])
    train = EventAccumulator(str(tmp_path / "train")).Reload()
    validation = EventAccumulator(str(tmp_path / "validation")).Reload()
    assert [event.step for event in train.Scalars("epoch_loss")] == [0, 1]
    np.testing.assert_allclose([event.value for event in train.Scalars("epoch_loss")],
                               history.history["loss"], rtol=1e-6)
    np.testing.assert_allclose([event.value for event in validation.Scalars("epoch_accuracy")],
                               history.history["val_accuracy"], rtol=1e-6)
    assert [event.step for event in train.Scalars("batch_loss")] == [2, 4, 6]


def test_tensorboard_without_the_package_says_how_to_install_it(monkeypatch):
    for name in [name for name in sys.modules if name.startswith("tensorboard")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ImportError, match=r"pip install fastcnn\[tensorboard\]"):
        fastcnn.TensorBoard("logs")


def test_tensorboard_update_freq_must_be_epoch_or_a_count():
    pytest.importorskip("tensorboard")
    with pytest.raises(InputError, match="update_freq must be 'epoch'"):
        fastcnn.TensorBoard("logs", update_freq="batch")
