"""Saving and loading: architecture, weights, optimizer state and epoch round-trip, a resumed
run equals a straight one bit for bit, and a crash mid-write leaves the old file intact."""

from __future__ import annotations

import errno
import io
import os
import signal
import stat

import numpy as np
import pytest

import fastcnn
from fastcnn import optim
from helpers import (assert_same_weights, mnist_like, numpy_backend, run_python,  # noqa: F401
                     small_cnn, toy_images, trained)

pytestmark = pytest.mark.usefixtures("numpy_backend")

CONFIGURED = {
    "adam": lambda: optim.Adam(lr=1e-2, betas=(0.8, 0.99), eps=1e-7),
    "sgd": lambda: optim.SGD(lr=0.05, momentum=0.9),
    "adadelta": lambda: optim.Adadelta(lr=1.0, rho=0.95, eps=1e-7),
    "rmsprop": lambda: optim.RMSprop(lr=0.01, momentum=0.5, centered=True),
}
# every registered optimizer (its defaults where CONFIGURED has none): a new one is covered as it is
OPTIMIZERS = {name: CONFIGURED.get(name, lambda name=name: optim.get(name)) for name in optim.OPTIMIZERS}


def optimizer_state(model):
    return {(name, slot): np.array(value) for name, param in model.named_parameters()
            for slot, value in param.state.items()}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_save_and_load_round_trip_architecture_weights_optimizer_state_and_epoch(tmp_path, optimizer):
    x, y = toy_images(32)
    model = small_cnn(dropout=0.3)
    model.compile(OPTIMIZERS[optimizer](), "cross_entropy", metrics=["accuracy", "roc_auc"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    model.save(tmp_path / "model.npz")
    loaded = fastcnn.load_model(tmp_path / "model.npz")

    assert loaded.get_config() == model.get_config()
    assert_same_weights(loaded, model)
    assert loaded.epoch == 2
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 4
    assert loaded.loss.name == "cross_entropy" and loaded.metrics == ["accuracy", "roc_auc"]
    saved_state, loaded_state = optimizer_state(model), optimizer_state(loaded)
    assert saved_state.keys() == loaded_state.keys() and len(saved_state) > 0
    for key in saved_state:
        assert np.array_equal(saved_state[key], loaded_state[key]), key
    assert loaded.layers[-2].get_state() == model.layers[-2].get_state()  # dropout position
    assert np.array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_training_resumed_from_a_checkpoint_equals_training_straight_through(tmp_path, optimizer):
    x, y = toy_images(40)

    def fresh():
        return small_cnn(seed=0, dropout=0.3).compile(OPTIMIZERS[optimizer](), "cross_entropy")

    straight = fresh()
    straight.fit(x, y, epochs=3, batch_size=16, verbose=0)

    first_leg = fresh()
    first_leg.fit(x, y, epochs=1, batch_size=16, verbose=0)
    first_leg.save(tmp_path / "epoch1.npz")
    resumed = fastcnn.load_model(tmp_path / "epoch1.npz")
    history = resumed.fit(x, y, epochs=3, batch_size=16, verbose=0, initial_epoch=resumed.epoch)

    assert history.epoch == [1, 2] and resumed.epoch == 3
    assert_same_weights(resumed, straight)
    assert resumed.optimizer.iterations == straight.optimizer.iterations


def test_the_models_training_data_description_survives_a_round_trip(tmp_path):
    model = fastcnn.zoo.pytorch_cnn(seed=0)
    assert model.data_info is None
    model.data_info = fastcnn.datasets.data_info("KMNIST", train_images=1000)
    model.save(tmp_path / "m.npz")
    info = fastcnn.load_model(tmp_path / "m.npz").data_info
    assert info == model.data_info and info["dataset"] == "kmnist" and len(info["classes"]) == 10


def test_a_model_saved_without_compiling_loads_ready_to_predict(tmp_path):
    model = fastcnn.zoo.pytorch_cnn(seed=0)
    model.save(tmp_path / "m.npz")
    loaded = fastcnn.load_model(tmp_path / "m.npz")
    assert loaded.loss is None and loaded.optimizer is None
    x, _ = mnist_like(2)
    assert np.array_equal(loaded.predict(x), model.predict(x))


def test_frozen_layers_and_compat_quirk_layers_survive_a_round_trip(tmp_path):
    x, y = mnist_like(8)
    for name, kwargs in [("fixed_kernel_cnn", {}), ("numpy_mlp", {"compat": True})]:
        model = fastcnn.zoo.get(name, seed=0, **kwargs)
        model.save(tmp_path / f"{name}.npz")
        loaded = fastcnn.load_model(tmp_path / f"{name}.npz")
        assert [type(layer).__name__ for layer in loaded.layers] == \
            [type(layer).__name__ for layer in model.layers]
        assert loaded.count_params(trainable_only=True) == model.count_params(trainable_only=True)
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_saving_a_model_that_is_not_built_is_refused(tmp_path):
    model = fastcnn.Sequential([fastcnn.Flatten(), fastcnn.Dense(4, 2)])
    with pytest.raises(RuntimeError, match="not built"):
        model.save(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def crashing_savez(monkeypatch):
    """Make np.savez write half an archive, then fail as a full disk would."""
    original = np.savez

    def savez(handle, **arrays):
        buffer = io.BytesIO()
        original(buffer, **arrays)
        handle.write(buffer.getvalue()[:len(buffer.getvalue()) // 2])
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", savez)


def test_a_crash_while_saving_leaves_the_old_checkpoint_intact_and_no_temporary_file(tmp_path,
                                                                                   monkeypatch):
    x, y = toy_images(16)
    path = tmp_path / "model.npz"
    model = trained(small_cnn(), x, y)
    model.save(path)
    old = path.read_bytes()
    model.fit(x, y, epochs=2, verbose=0)
    crashing_savez(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        model.save(path)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    monkeypatch.undo()
    assert fastcnn.load_model(path).epoch == 1


def test_a_crash_during_the_first_save_leaves_no_file_at_all(tmp_path, monkeypatch):
    x, y = toy_images(16)
    model = trained(small_cnn(), x, y)
    crashing_savez(monkeypatch)
    (tmp_path / "sub").mkdir()
    with pytest.raises(OSError):
        model.save(tmp_path / "sub" / "model.npz")
    assert list((tmp_path / "sub").iterdir()) == []


# ---- where a save goes -----------------------------------------------------------------------------


def test_saving_to_a_folder_or_below_a_file_is_a_clear_error_naming_the_destination(tmp_path):
    model = small_cnn()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for target, words in [(tmp_path, "is a folder: give a file name"),
                          (blocker / "model.npz", "is a file, so")]:
        with pytest.raises(fastcnn.CheckpointError, match=words) as error:
            model.save(target)
        assert str(error.value).startswith(f"cannot save to {target}: ") and ".part" not in str(error.value)


def test_saving_into_a_folder_that_does_not_exist_is_refused_naming_it(tmp_path):
    missing = tmp_path / "nonexistent" / "dir"
    for save in (small_cnn().save, small_cnn().save_weights):
        with pytest.raises(fastcnn.CheckpointError, match=f"the folder {missing} does not exist"):
            save(missing / "m.npz")
    assert list(tmp_path.iterdir()) == []  # nothing created on the way


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_saving_into_a_read_only_folder_says_so(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(fastcnn.CheckpointError, match="is not writable"):
            small_cnn().save(folder / "m.npz")
    finally:
        folder.chmod(0o755)


def test_a_full_disk_is_reported_with_the_destination_not_the_temporary_file(tmp_path, monkeypatch):
    def full(handle, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(fastcnn.CheckpointError, match="the disk is full") as error:
        small_cnn().save(tmp_path / "m.npz")
    assert str(error.value).startswith(f"cannot save to {tmp_path / 'm.npz'}: ")
    assert ".part" not in str(error.value) and list(tmp_path.iterdir()) == []


def test_model_checkpoint_to_an_unwritable_path_fails_before_the_first_epoch(tmp_path):
    x, y = toy_images(16)
    model = small_cnn().compile("adam")
    with pytest.raises(fastcnn.CheckpointError, match="is a folder"):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[fastcnn.ModelCheckpoint(tmp_path)])
    assert model.epoch == 0


def test_parts_left_by_killed_saves_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "model.npz"
    for _ in range(3):
        killed = run_python(f"""
            import os, signal, numpy as np, fastcnn
            from helpers import small_cnn
            fastcnn.set_backend("numpy")
            def dying(handle, **arrays):
                handle.write(b"half an archive")
                handle.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            np.savez = dying
            small_cnn().save({str(path)!r})
            """)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert len(list(tmp_path.glob(".model.npz.*.part"))) == 1  # the last one only, never a pile
    small_cnn().save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_saved_models_get_the_permissions_of_other_outputs(tmp_path):
    old = os.umask(0o022)
    try:
        small_cnn().save(tmp_path / "m.npz")
        small_cnn().save_weights(tmp_path / "w.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.npz").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "w.npz").stat().st_mode) == 0o644
