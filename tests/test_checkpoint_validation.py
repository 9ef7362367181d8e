"""A damaged checkpoint is refused on load, naming the array and the file, before any kernel
sees it; and no kernel ever receives a buffer of the wrong size, on any backend."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fastcnn
from fastcnn import CheckpointError
from helpers import (compiled_backends, numpy_backend, run_python, small_cnn,  # noqa: F401
                     toy_images, trained)

pytestmark = pytest.mark.usefixtures("numpy_backend")


@pytest.fixture
def saved(tmp_path):
    """An Adam-trained small CNN with dropout saved to model.npz; returns (path, arrays)."""
    x, y = toy_images(32)
    model = trained(small_cnn(dropout=0.3), x, y)
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path) as archive:
        return path, {key: archive[key] for key in archive.files}


def rewrite(path, arrays, **changes):
    arrays = {**arrays, **changes}
    np.savez(path, **arrays)
    return path


def with_meta(arrays, edit):
    meta = json.loads(str(arrays["__fastcnn__"]))
    edit(meta)
    return {"__fastcnn__": np.array(json.dumps(meta))}


DAMAGE = {
    "optimizer slot of the wrong shape": (
        lambda a: {"optim/0.weight/exp_avg": np.zeros(3)}, "'optim/0.weight/exp_avg' has dtype float64"),
    "optimizer slot of the wrong size": (
        lambda a: {"optim/0.weight/exp_avg": np.zeros(3, np.float32)},
        r"'optim/0.weight/exp_avg' has shape \(3,\), the model needs \(4, 1, 3, 3\)"),
    "optimizer slot with NaN": (
        lambda a: {"optim/4.bias/exp_avg_sq": np.full(a["optim/4.bias/exp_avg_sq"].shape, np.nan,
                                                        np.float32)},
        "'optim/4.bias/exp_avg_sq' has 16 NaN"),
    "optimizer slot the optimizer does not have": (
        lambda a: {"optim/0.weight/velocity": np.zeros((4, 1, 3, 3), np.float32)},
        "adam has no slot 'velocity'"),
    "weight of the wrong shape": (
        lambda a: {"param/4.weight": np.zeros((16, 3), np.float32)},
        r"'param/4.weight' has shape \(16, 3\), the model needs \(16, 64\)"),
    "weight of an integer dtype": (
        lambda a: {"param/0.bias": np.zeros(4, np.int64)}, "'param/0.bias' has dtype int64"),
    "weight with infinities": (
        lambda a: {"param/0.bias": np.array([0, np.inf, 0, 0], np.float32)}, "1 infinite"),
    "shuffling RNG state": (
        lambda a: with_meta(a, lambda m: m.update(rng_state={"bit_generator": "PCG64", "state": 3})),
        "rng_state"),
    "RNG state of another generator": (
        lambda a: with_meta(a, lambda m: m["rng_state"].update(bit_generator="MT19937")), "rng_state"),
    "dropout position": (
        lambda a: with_meta(a, lambda m: m["state"]["6"].update(calls=-4)),
        "layer '6' is invalid.*calls"),
    "epoch counter": (lambda a: with_meta(a, lambda m: m.update(epoch=1.5)), "epoch counter"),
    "optimizer settings": (
        lambda a: with_meta(a, lambda m: m["optimizer"].update(lr=-1)), "learning rate"),
    "training data description": (
        lambda a: with_meta(a, lambda m: m.update(data=["mnist"])), "training data description"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_is_refused_naming_the_array_and_the_file(saved, damage):
    path, arrays = saved
    change, message = DAMAGE[damage]
    rewrite(path, arrays, **change(arrays))
    with pytest.raises(CheckpointError, match=message) as error:
        fastcnn.load_model(path)
    assert str(path) in str(error.value)


def test_load_weights_checks_every_array_and_changes_nothing_on_error(saved, tmp_path):
    path, arrays = saved
    model = small_cnn(seed=5, dropout=0.3)
    before = model.get_weights()
    bad = rewrite(tmp_path / "bad.npz", {k: v for k, v in arrays.items() if k.startswith("param/")},
                  **{"param/4.bias": np.full(16, np.nan, np.float32)})
    with pytest.raises(CheckpointError, match=f"{bad}.*'param/4.bias' has 16 NaN"):
        model.load_weights(bad)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


@pytest.mark.parametrize("backend", compiled_backends())
def test_a_wrong_sized_optimizer_buffer_never_reaches_a_compiled_kernel(backend):
    # in a subprocess: before fastcnn.functional checked buffers, this segfaulted (numba, cython)
    result = run_python(f"""
        import numpy as np, fastcnn
        from helpers import small_cnn, toy_images
        fastcnn.set_backend({backend!r})
        x, y = toy_images(32)
        model = small_cnn().compile(fastcnn.optim.Adam(lr=1e-2), "cross_entropy")
        model.fit(x, y, epochs=1, verbose=0)
        model.parameters()[0].state["exp_avg"] = fastcnn.get_backend().zeros((3,))
        try:
            model.fit(x, y, epochs=1, verbose=0)
            print("trained")
        except fastcnn.InputError as exc:
            print("refused:", exc)
        """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused: adam_update_many: exp_avgs[0] is float32 (3,)" in result.stdout
    assert "needs C-contiguous float32 (4, 1, 3, 3)" in result.stdout


def test_a_file_saved_before_models_knew_their_data_loads_without_it(saved):
    path, arrays = saved
    rewrite(path, arrays, **with_meta(arrays, lambda m: m.pop("data")))
    assert fastcnn.load_model(path).data_info is None
