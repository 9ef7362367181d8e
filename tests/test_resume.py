"""A saved model's schedule resumes exactly where it stopped: fit saved after epoch 2 of 4,
loaded and fit on gives the weights and the per-batch learning rates (and momenta) of the run
that never stopped, for every schedule (every optimizer without one: test_serialization.py);
a finished schedule saves and loads; a damaged schedule in a checkpoint, and a schedule too
short for the resumed fit, are refused saying what is wrong and what to do."""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from fastcnn import optim, serialization
from fastcnn.callbacks import Callback
from fastcnn.errors import CheckpointError, InputError
from fastcnn.schedules import CosineAnnealingLR, OneCycleLR, StepLR
from helpers import small_cnn, toy_images

EPOCHS, SAVED_AT, BATCH = 4, 2, 10


@pytest.fixture(autouse=True)
def numpy_backend():
    with fastcnn.use_backend("numpy"):
        yield


class Recorder(Callback):
    """The learning rate and momentum (beta1 or momentum) each batch trains with; saves the
    model to ``path`` at the end of epoch ``save_after`` (as ModelCheckpoint would)."""

    def __init__(self, path=None, save_after=None):
        self.rates, self.momenta, self.path, self.save_after = [], [], path, save_after

    def on_batch_begin(self, batch, logs=None):
        optimizer = self.model.optimizer
        self.rates.append(optimizer.lr)
        self.momenta.append(getattr(optimizer, "beta1", getattr(optimizer, "momentum", None)))

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.save_after:
            self.model.save(self.path)


def _uninterrupted_then_resumed(make_optimizer, make_schedule, path):
    """(uninterrupted recorder, its weights, resumed recorder, resumed weights, loaded model)."""
    x, y = toy_images(40, seed=3)
    model = small_cnn(seed=3).compile(make_optimizer(), "cross_entropy", schedule=make_schedule())
    whole = Recorder(path, SAVED_AT)
    model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, callbacks=[whole])
    loaded = fastcnn.load_model(path)
    assert loaded.epoch == SAVED_AT
    resumed = Recorder()
    loaded.fit(x, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, callbacks=[resumed],
               initial_epoch=loaded.epoch)
    return whole, model.state_dict(), resumed, loaded.state_dict(), loaded


def _assert_same_run(whole, weights, resumed, resumed_weights):
    half = len(whole.rates) // 2
    assert resumed.rates == whole.rates[half:]
    assert resumed.momenta == whole.momenta[half:]
    for name, value in weights.items():
        np.testing.assert_array_equal(resumed_weights[name], value, err_msg=name)


SCHEDULES = {
    "one-cycle-adam": (lambda: optim.Adam(0.01), lambda: OneCycleLR(max_lr=0.05)),
    "one-cycle-sgd-three-phase": (lambda: optim.SGD(0.01, momentum=0.9, nesterov=True),
                                  lambda: OneCycleLR(max_lr=0.1, three_phase=True,
                                                     anneal_strategy="linear")),
    "cosine-warm-up-adamw": (lambda: optim.AdamW(0.01),
                             lambda: CosineAnnealingLR(T_max=EPOCHS, warmup_steps=1)),
    "step-per-batch-rmsprop": (lambda: optim.RMSprop(0.01, momentum=0.5),
                               lambda: StepLR(step_size=3, gamma=0.5, interval="batch")),
}


@pytest.mark.parametrize("case", sorted(SCHEDULES))
def test_a_schedule_resumes_with_the_rates_of_a_run_that_never_stopped(case, tmp_path):
    make_optimizer, make_schedule = SCHEDULES[case]
    whole, weights, resumed, resumed_weights, loaded = _uninterrupted_then_resumed(
        make_optimizer, make_schedule, tmp_path / "m.npz")
    assert type(loaded.schedule) is type(make_schedule())
    assert loaded.schedule.optimizer is loaded.optimizer
    assert len(set(whole.rates)) > 2  # the schedule did move the rate
    _assert_same_run(whole, weights, resumed, resumed_weights)


def test_a_finished_cosine_at_rate_zero_saves_and_loads(tmp_path):
    x, y = toy_images(20, seed=4)
    model = small_cnn(seed=4).compile(optim.SGD(0.1), "cross_entropy",
                                      schedule=CosineAnnealingLR(T_max=2))
    model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0)
    assert model.optimizer.lr == 0.0
    model.save(tmp_path / "m.npz")
    loaded = fastcnn.load_model(tmp_path / "m.npz")
    assert loaded.optimizer.lr == 0.0 and loaded.schedule.last_epoch == 2
    assert loaded.schedule.base_lr == 0.1


def test_a_schedule_saved_before_its_first_fit_is_bound_by_the_next_fit(tmp_path):
    x, y = toy_images(20, seed=5)
    model = small_cnn(seed=5).compile(optim.Adam(0.01), "cross_entropy",
                                      schedule=OneCycleLR(max_lr=0.05))
    model.save(tmp_path / "m.npz")
    loaded = fastcnn.load_model(tmp_path / "m.npz")
    assert loaded.schedule.optimizer is None and loaded.schedule.total_steps is None
    loaded.fit(x, y, epochs=2, batch_size=BATCH, verbose=0)
    assert loaded.schedule.total_steps == 4 and loaded.schedule.last_epoch == 4


def _saved_one_cycle(path, total_steps=None, epochs=SAVED_AT):
    x, y = toy_images(40, seed=6)
    model = small_cnn(seed=6).compile(optim.Adam(0.01), "cross_entropy",
                                      schedule=OneCycleLR(max_lr=0.05, total_steps=total_steps))
    model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0)
    model.save(path)
    return x, y


def test_resuming_past_the_schedules_last_step_is_refused_before_any_batch(tmp_path):
    x, y = _saved_one_cycle(tmp_path / "m.npz")  # total_steps: the 2 epochs' 8 batches
    loaded = fastcnn.load_model(tmp_path / "m.npz")
    before = loaded.state_dict()
    with pytest.raises(InputError, match=r"OneCycleLR would be stepped past its last step \(8\): "
                       r"it is at step 8 with 0 batch steps left.*new schedule"):
        loaded.fit(x, y, epochs=3, batch_size=BATCH, verbose=0, initial_epoch=loaded.epoch)
    assert loaded.epoch == SAVED_AT
    for name, value in before.items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value, err_msg=name)
    # what the message says to do: a new schedule on the same optimizer, its state kept
    iterations = loaded.optimizer.iterations
    loaded.compile(loaded.optimizer, loaded.loss, schedule=StepLR(step_size=2, interval="batch"))
    loaded.fit(x, y, epochs=3, batch_size=BATCH, verbose=0, initial_epoch=loaded.epoch)
    assert loaded.optimizer.iterations == iterations + 4 and loaded.schedule.last_epoch == 4


def test_resuming_for_more_epochs_than_the_schedule_has_left_says_how_many_it_has(tmp_path):
    x, y = _saved_one_cycle(tmp_path / "m.npz", total_steps=14)  # 3 epochs of 4 batches, and 2
    loaded = fastcnn.load_model(tmp_path / "m.npz")
    with pytest.raises(InputError, match=r"6 batch steps left.*2 epochs would take 8: train up "
                       r"to epoch 3 \(fit\(epochs=3\)"):
        loaded.fit(x, y, epochs=4, batch_size=BATCH, verbose=0, initial_epoch=loaded.epoch)
    loaded.fit(x, y, epochs=3, batch_size=BATCH, verbose=0, initial_epoch=loaded.epoch)
    assert loaded.schedule.last_epoch == 12


def _tampered(path, change):
    arrays, meta = serialization.read(path)
    change(meta)
    serialization.write(path, arrays, meta)


@pytest.mark.parametrize("change, words", [
    (lambda meta: meta["schedule"]["config"].update(name="WarmRestarts"),
     ["'schedule.config'", "unknown schedule 'WarmRestarts'"]),
    (lambda meta: meta["schedule"]["config"].update(max_lr=-1),
     ["'schedule.config'", "max_lr must be in"]),
    (lambda meta: meta["schedule"]["config"].update(spin=3),
     ["'schedule.config'", "spin"]),
    (lambda meta: meta["schedule"]["state"].update(last_epoch="8"),
     ["'schedule.state'", "last_epoch must be a whole number"]),
    (lambda meta: meta["schedule"]["state"].update(last_epoch=9),
     ["'schedule.state'", "<= its last step 8"]),
    (lambda meta: meta["schedule"]["state"].pop("base_lr"),
     ["'schedule.state'", "base_lr must be a number"]),
    (lambda meta: meta.update(schedule=[1, 2]), ["('schedule')", "re-save it"]),
], ids=["name", "argument", "unknown-argument", "step-type", "step-past-end", "no-base-rate",
        "not-a-dict"])
def test_a_damaged_schedule_in_a_checkpoint_is_a_checkpoint_error_naming_file_and_field(
        change, words, tmp_path):
    path = tmp_path / "m.npz"
    _saved_one_cycle(path)
    _tampered(path, change)
    with pytest.raises(CheckpointError) as caught:
        fastcnn.load_model(path)
    for word in [str(path), *words]:
        assert word in str(caught.value)


def test_a_checkpoint_from_before_schedules_were_saved_still_loads(tmp_path):
    path = tmp_path / "m.npz"
    x, y = _saved_one_cycle(path)
    _tampered(path, lambda meta: meta.pop("schedule"))
    loaded = fastcnn.load_model(path)
    assert loaded.schedule is None and loaded.optimizer.name == "adam"
    loaded.fit(x, y, epochs=3, batch_size=BATCH, verbose=0, initial_epoch=loaded.epoch)


def test_schedule_configs_round_trip():
    for schedule in (StepLR(step_size=2, gamma=0.3, interval="batch"),
                     CosineAnnealingLR(T_max=7, eta_min=1e-4, warmup_steps=2),
                     OneCycleLR(max_lr=0.2, total_steps=30, three_phase=True)):
        copy = fastcnn.schedules.from_config(schedule.get_config())
        assert type(copy) is type(schedule) and copy.get_config() == schedule.get_config()


def test_a_schedule_given_to_fit_as_a_callback_is_saved_and_resumes_as_one_given_to_compile(
        tmp_path):
    x, y = toy_images(40, seed=3)
    model = small_cnn(seed=3).compile(optim.SGD(0.1, momentum=0.9), "cross_entropy")
    schedule = StepLR(step_size=1, gamma=0.5)
    model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=[schedule])
    assert model.schedule is schedule
    model.save(tmp_path / "m.npz")
    loaded = fastcnn.load_model(tmp_path / "m.npz")
    assert loaded.schedule.last_epoch == 2 and loaded.optimizer.lr == pytest.approx(0.025)
    with pytest.raises(InputError, match="two learning-rate schedules"):
        loaded.fit(x, y, epochs=3, batch_size=BATCH, verbose=0, initial_epoch=2,
                   callbacks=[StepLR(step_size=1)])
