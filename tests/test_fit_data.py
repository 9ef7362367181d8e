"""fit on generators and iterables of batches, and seeded image augmentation (RandomAffine):
what they train on, and the errors for bad batches and impossible augmentations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

import fastcnn
from fastcnn.augment import RandomAffine
from fastcnn.errors import InputError
from fastcnn.kernels import training_reference
from fastcnn.kernels.numba_cpu.augment import affine_resample
from helpers import small_cnn, toy_images


def _compiled(seed=0):
    model = small_cnn(seed=seed)
    model.compile(fastcnn.optim.SGD(0.05, momentum=0.9), "cross_entropy")
    return model


def _batches(x, y, size):
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def test_fit_on_a_list_of_batches_trains_what_fit_on_the_arrays_unshuffled_trains():
    x, y = toy_images(48, seed=1)
    from_arrays, from_batches = _compiled(), _compiled()
    expected = from_arrays.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    got = from_batches.fit(_batches(x, y, 16), epochs=2, verbose=0)
    for a, b in zip(from_arrays.get_weights(), from_batches.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert got.history == expected.history


def test_fit_on_an_endless_generator_takes_steps_per_epoch_batches_each_epoch():
    x, y = toy_images(64, seed=2)
    served = []

    def endless():
        while True:
            for xb, yb in _batches(x, y, 16):
                served.append(len(xb))
                yield xb, yb

    model = _compiled()
    history = model.fit(endless(), epochs=3, steps_per_epoch=2, verbose=0)
    assert len(served) == 6 and len(history.history["loss"]) == 3
    assert model.epoch == 3


def test_a_generator_batch_may_carry_sample_weights():
    x, y = toy_images(32, seed=3)
    zero_weighted, untrained = _compiled(), _compiled()
    zero_weighted.fit([(x, y, np.zeros(32))], epochs=1, verbose=0)
    for a, b in zip(zero_weighted.get_weights(), untrained.get_weights()):
        np.testing.assert_array_equal(a, b)  # weight 0 everywhere: no gradient


def test_a_generator_with_mismatched_shapes_is_refused_naming_the_batch():
    x, y = toy_images(24, seed=4)

    def wrong_image():
        yield x[:8], y[:8]
        yield x[8:16, :, :7], y[8:16]

    def wrong_labels():
        yield x[:8], y[:8]
        yield x[8:16], y[8:15]

    with pytest.raises(InputError, match=r"batch 2 of epoch 1 from the generator: inputs of shape "
                                         r"\(8, 1, 7, 8\) do not fit"):
        _compiled().fit(wrong_image(), verbose=0)
    with pytest.raises(InputError, match=r"batch 2 of epoch 1 from the generator: y does not match x"):
        _compiled().fit(wrong_labels(), verbose=0)
    with pytest.raises(InputError, match="yield \\(x, y\\) or \\(x, y, sample_weight\\) tuples"):
        _compiled().fit(iter([x[:8]]), verbose=0)


def test_a_generator_that_runs_out_says_how_to_fix_it():
    x, y = toy_images(16, seed=5)
    with pytest.raises(InputError, match="ran out after 0 batches of epoch 2.*endless generator"):
        _compiled().fit(iter(_batches(x, y, 8)), epochs=2, verbose=0)
    with pytest.raises(InputError, match="ran out after 1 batches of epoch 1.*steps_per_epoch"):
        _compiled().fit(iter(_batches(x, y, 16)), steps_per_epoch=2, verbose=0)


def test_fit_on_a_generator_refuses_y_and_validation_split():
    x, y = toy_images(16, seed=5)
    with pytest.raises(InputError, match="leave out y"):
        _compiled().fit(iter(_batches(x, y, 8)), y, verbose=0)


# ---- augmentation ----------------------------------------------------------------------------
def test_the_compiled_warp_matches_the_reference_and_scipy():
    x = np.random.default_rng(0).random((3, 2, 9, 11)).astype(np.float32)
    augment = RandomAffine(degrees=30, translate=(0.2, 0.1), scale=(0.8, 1.2), horizontal_flip=True,
                           vertical_flip=True, fill=0.3, seed=0)
    matrices = augment.matrices(3, 9, 11)
    compiled, reference = np.empty_like(x), np.empty_like(x)
    affine_resample(x, matrices, 0.3, compiled)
    training_reference.affine_resample(x, matrices, 0.3, reference)
    scipy_result = np.stack([[scipy.ndimage.affine_transform(
        x[n, c].astype(np.float64), matrices[n, :, :2], matrices[n, :, 2], order=1,
        mode="grid-constant", cval=0.3) for c in range(2)] for n in range(3)])
    np.testing.assert_allclose(compiled, reference, atol=1e-6)
    np.testing.assert_allclose(reference, scipy_result, atol=1e-6)


def test_a_quarter_turn_is_numpys_rot90_and_no_parameters_is_the_identity():
    x = np.random.default_rng(1).random((2, 1, 7, 7)).astype(np.float32)
    np.testing.assert_allclose(RandomAffine(degrees=(90, 90))(x), np.rot90(x, axes=(2, 3)), atol=1e-6)
    np.testing.assert_array_equal(RandomAffine(seed=0)(x), x)


def test_a_seeded_augmentation_repeats_and_flips_are_off_by_default():
    x = np.random.default_rng(2).random((4, 1, 8, 8)).astype(np.float32)
    first = RandomAffine(degrees=15, translate=(0.1, 0.1), seed=7)(x)
    np.testing.assert_array_equal(first, RandomAffine(degrees=15, translate=(0.1, 0.1), seed=7)(x))
    assert not np.array_equal(first, x)
    matrices = RandomAffine(seed=3).matrices(50, 8, 8)
    assert np.all(matrices[:, 0, 0] > 0) and np.all(matrices[:, 1, 1] > 0)  # no flips
    flipped = RandomAffine(horizontal_flip=True, seed=3).matrices(50, 8, 8)
    assert np.any(flipped[:, 1, 1] < 0)


@pytest.mark.parametrize("arguments, words", [
    ({"translate": (1.0, 0.0)}, "entirely out of the frame"),
    ({"translate": (0.6, 0.0), "scale": (0.1, 1.0)}, "entirely out of the frame: keep each fraction below 0.55"),
    ({"scale": (0.0, 1.0)}, "scale must be above 0"),
    ({"degrees": -5}, "degrees must be >= 0"),
    ({"translate": 0.1}, "translate must be a pair"),
])
def test_impossible_augmentations_are_refused(arguments, words):
    with pytest.raises(InputError, match=words):
        RandomAffine(**arguments)


def test_fit_augments_the_training_batches_only():
    x, y = toy_images(32, seed=6)
    seen = []

    class Recording(RandomAffine):
        def __call__(self, batch):
            seen.append(batch.copy())
            return super().__call__(batch)

    model = _compiled()
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0, validation_split=0.25,
                        augment=Recording(degrees=10, translate=(0.1, 0.1), seed=0))
    assert [len(batch) for batch in seen] == [16, 8]
    assert np.isfinite(history.history["val_loss"][0])
    with pytest.raises(TypeError, match="augment must be a callable"):
        model.fit(x, y, verbose=0, augment="random")
