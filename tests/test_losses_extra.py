"""Label smoothing, binary cross-entropy (probabilities and logits), NLL after LogSoftmax,
per-sample weights and top-k accuracy: finite-difference gradients (float64, numpy), PyTorch
parity on every backend, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from conftest import usable_backends
from fastcnn.errors import InputError
from fastcnn.layers import LogSoftmax
from fastcnn.losses import MSE, BinaryCrossEntropy, CrossEntropy, NLLLoss
from fastcnn.metrics import top_k_accuracy
from helpers import (assert_relative_close, float64_numpy_backend, numerical_gradient,
                     small_cnn, toy_images)
from test_layers_gradients import check_layer_gradients

torch = pytest.importorskip("torch", reason="the parity tests need PyTorch (pip install fastcnn[torch])")
F = torch.nn.functional

LABELS = np.array([0, 3, 2, 3, 1], dtype=np.int32)
WEIGHTS = np.array([1.0, 0.0, 2.5, 0.5, 1.0])


def _inputs(*shape, seed=2, scale=1.0):
    return np.random.default_rng(seed).normal(0.0, scale, size=shape)


def _binary_targets(shape, seed=3):
    return np.random.default_rng(seed).integers(0, 2, shape).astype(np.float64)


# ---- finite differences ----------------------------------------------------------------------
CASES = {
    "smoothed-cross-entropy": (lambda: CrossEntropy(label_smoothing=0.2), lambda: _inputs(5, 4),
                               LABELS),
    "bce-logits": (lambda: BinaryCrossEntropy(from_logits=True), lambda: _inputs(5, 3, scale=3.0),
                   _binary_targets((5, 3))),
    "bce-probabilities": (lambda: BinaryCrossEntropy(),
                          lambda: 1 / (1 + np.exp(-_inputs(5, 3))), _binary_targets((5, 3))),
    "nll": (NLLLoss, lambda: np.log(np.exp(_inputs(5, 4)) / np.exp(_inputs(5, 4)).sum(1, keepdims=True)),
            LABELS),
    "mse": (MSE, lambda: _inputs(5, 4), np.eye(4)[LABELS]),
}


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_gradients_match_finite_differences(name, weighted):
    make, pred_of, target = CASES[name]
    with float64_numpy_backend():
        loss, pred = make(), pred_of()
        targets = loss.targets(target, pred.shape[1], len(pred), weighted)
        if targets.dtype.kind == "f":
            targets = targets.astype(np.float64)
        weights = WEIGHTS if weighted else None

        def value():
            return float(loss.compute(pred, targets, weights)[0])

        value()
        analytic = np.array(loss.grad)
        numeric = numerical_gradient(value, pred)
        assert np.abs(numeric).max() > 0
        assert_relative_close(analytic, numeric, 1e-6, name)


@pytest.mark.parametrize("scale", [1.0, 30.0], ids=["moderate", "large-logits"])
def test_log_softmax_gradients_match_finite_differences(scale):
    with float64_numpy_backend():
        check_layer_gradients(LogSoftmax(), _inputs(4, 6, scale=scale))


# ---- PyTorch parity ----------------------------------------------------------------------------
def _torch_loss(name, pred, target, weights):
    pred = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
    target_t = torch.tensor(target)
    if name == "smoothed-cross-entropy":
        per_sample = F.cross_entropy(pred, target_t.long(), label_smoothing=0.2, reduction="none")
    elif name == "bce-logits":
        per_sample = F.binary_cross_entropy_with_logits(pred, target_t, reduction="none").mean(1)
    elif name == "bce-probabilities":
        per_sample = F.binary_cross_entropy(pred, target_t, reduction="none").mean(1)
    elif name == "nll":
        per_sample = F.nll_loss(pred, target_t.long(), reduction="none")
    else:
        per_sample = F.mse_loss(pred, target_t, reduction="none").mean(1)
    w = torch.ones(len(per_sample), dtype=torch.float64) if weights is None else torch.tensor(weights)
    loss = (per_sample * w).mean()  # Keras' weighting: sum(w * loss) / N
    loss.backward()
    return loss.item(), pred.grad.numpy()


@pytest.mark.parametrize("backend", usable_backends())
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_losses_match_pytorch(backend, name, weighted):
    make, pred_of, target = CASES[name]
    pred = pred_of().astype(np.float32)
    weights = WEIGHTS if weighted else None
    with fastcnn.use_backend(backend):
        loss = make()
        value = loss(pred, target, sample_weight=weights)
        grad = fastcnn.to_numpy(loss.backward())
    expected_value, expected_grad = _torch_loss(name, pred.astype(np.float64), target, weights)
    assert value == pytest.approx(expected_value, rel=1e-5, abs=1e-7)
    assert_relative_close(grad, expected_grad, 1e-5, f"{backend} {name}")


@pytest.mark.parametrize("backend", usable_backends())
def test_log_softmax_then_nll_matches_pytorch_and_cross_entropy(backend):
    logits = _inputs(5, 4, scale=5.0).astype(np.float32)
    with fastcnn.use_backend(backend):
        layer = LogSoftmax()
        layer.build((4,))
        logp = layer.forward(fastcnn.get_backend().to_device(logits))
        nll = NLLLoss()
        value = nll(logp, LABELS)
        dlogits = fastcnn.to_numpy(layer.backward(nll.backward()))
        logp = fastcnn.to_numpy(logp)
    torch_logits = torch.tensor(logits, requires_grad=True)
    torch_logp = F.log_softmax(torch_logits, dim=1)
    torch_loss = F.nll_loss(torch_logp, torch.tensor(LABELS).long())
    torch_loss.backward()
    assert_relative_close(logp, torch_logp.detach().numpy(), 1e-6, "log-probabilities")
    assert value == pytest.approx(torch_loss.item(), rel=1e-6)
    assert_relative_close(dlogits, torch_logits.grad.numpy(), 1e-5, "gradient")


# ---- fit with weights ---------------------------------------------------------------------------
def _one_full_batch_step(**weighting):
    x, y = toy_images(12, seed=4)
    model = small_cnn(seed=4)
    model.compile(fastcnn.optim.SGD(0.1), "cross_entropy")
    model.fit(x, y, epochs=1, batch_size=12, shuffle=False, verbose=0, **weighting)
    return model.get_weights(), y


def test_class_weight_is_the_sample_weight_of_each_samples_class():
    table = {0: 2.0, 2: 0.0}  # classes 1 and 3 left out weigh 1
    by_class, y = _one_full_batch_step(class_weight=table)
    by_sample, _ = _one_full_batch_step(sample_weight=np.array([table.get(int(c), 1.0) for c in y]))
    unweighted, _ = _one_full_batch_step()
    for a, b, c in zip(by_class, by_sample, unweighted):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert any(not np.allclose(a, c) for a, c in zip(by_class, unweighted))


def test_a_class_weight_naming_a_class_that_does_not_exist_is_refused():
    x, y = toy_images(8)
    model = small_cnn()
    model.compile("sgd", "cross_entropy")
    with pytest.raises(InputError, match=r"class_weight names classes \[4\] that do not exist: this "
                                         r"model has 4 classes, numbered 0 to 3"):
        model.fit(x, y, verbose=0, class_weight={0: 1.0, 4: 2.0})


def test_sample_weights_of_the_wrong_length_or_negative_are_refused():
    x, y = toy_images(8)
    model = small_cnn()
    model.compile("sgd", "cross_entropy")
    with pytest.raises(InputError, match="sample_weight must be 8 numbers"):
        model.fit(x, y, verbose=0, sample_weight=np.ones(7))
    with pytest.raises(InputError, match="finite and >= 0"):
        model.fit(x, y, verbose=0, sample_weight=-np.ones(8))


def test_binary_classifier_trains_with_bce_on_sigmoid_and_on_logits():
    x, y = toy_images(64, seed=5, classes=2)
    for head, loss in (([fastcnn.Dense(16, 1), fastcnn.Sigmoid()], "binary_crossentropy"),
                       ([fastcnn.Dense(16, 1)], BinaryCrossEntropy(from_logits=True))):
        model = fastcnn.Sequential([fastcnn.Flatten(), fastcnn.Dense(64, 16), fastcnn.ReLU(), *head],
                                   seed=0, input_shape=(1, 8, 8))
        model.compile(fastcnn.optim.Adam(lr=1e-2), loss)
        history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
        assert history.history["accuracy"][-1] > 0.9
        assert history.history["loss"][-1] < history.history["loss"][0]


def test_binary_targets_outside_zero_one_are_refused():
    with pytest.raises(InputError, match=r"binary targets must lie in \[0, 1\]"):
        BinaryCrossEntropy()(np.full((2, 1), 0.5, np.float32), np.array([0, 2]))


def test_label_smoothing_must_be_below_one_and_round_trips_through_a_saved_model(tmp_path):
    with pytest.raises(InputError, match="label_smoothing must be a number in"):
        CrossEntropy(label_smoothing=1.0)
    x, y = toy_images(16)
    model = small_cnn()
    model.compile("adam", CrossEntropy(label_smoothing=0.1))
    model.fit(x, y, verbose=0)
    model.save(tmp_path / "m.npz")
    assert fastcnn.load_model(tmp_path / "m.npz").loss.label_smoothing == 0.1


# ---- top-k ----------------------------------------------------------------------------------------
def test_top_k_accuracy_counts_the_true_class_among_the_k_best_with_ties_in_its_favour():
    scores = np.array([[0.1, 0.5, 0.4], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]])
    labels = np.array([2, 0, 2])
    assert top_k_accuracy(labels, scores, k=1) == pytest.approx(0.0)
    assert top_k_accuracy(labels, scores, k=2) == pytest.approx(2 / 3)  # a tie for second
    assert top_k_accuracy(np.eye(3)[labels], scores, k=3) == 1.0
    assert fastcnn.metrics.sparse_top_k_categorical_accuracy is top_k_accuracy


def test_top_k_accuracy_matches_pytorch_topk_without_ties():
    scores = _inputs(50, 10, seed=8)
    labels = np.random.default_rng(9).integers(0, 10, 50)
    top = torch.tensor(scores).topk(3, dim=1).indices.numpy()
    assert top_k_accuracy(labels, scores, 3) == np.mean([label in row for label, row in zip(labels, top)])


def test_fit_and_evaluate_log_top_k_accuracy_under_the_keras_and_short_names():
    x, y = toy_images(32, seed=6)
    model = small_cnn(seed=6)
    model.compile("adam", metrics=["accuracy", "sparse_top_k_categorical_accuracy", "top_2_accuracy"])
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0, validation_split=0.25)
    for key in ("top_5_accuracy", "top_2_accuracy", "val_top_2_accuracy"):
        assert key in history.history
    result = model.evaluate(x, y)
    assert result["top_5_accuracy"] == 1.0  # 4 classes
    assert result["top_2_accuracy"] == top_k_accuracy(y, model.predict(x), 2)
    with pytest.raises(ValueError, match="top_k_accuracy"):
        model.compile("adam", metrics=["top_0_accuracy"])


@pytest.mark.parametrize("backend", usable_backends())
def test_log_softmax_passes_check_layer(backend, tmp_path):
    from layer_check import check_layer

    check_layer(LogSoftmax, (6,), backend, tmp_path, torch_twin=lambda: torch.nn.LogSoftmax(dim=1))
