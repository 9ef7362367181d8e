"""RMSprop, Nesterov momentum, Keras' Adam and AdamW spellings, AdamW and gradient clipping
against PyTorch: one and several steps from identical weights and gradients, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from conftest import usable_backends
from fastcnn import optim
from fastcnn.parameter import Parameter

torch = pytest.importorskip("torch", reason="the parity tests need PyTorch (pip install fastcnn[torch])")
pytestmark = pytest.mark.torch

SHAPES = ((3, 2, 3, 3), (5,), (4, 7))
TOLERANCE = 2e-6


def _problem(seed=0, steps=3, scale=1.0):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]
    grads = [[(rng.standard_normal(shape) * scale).astype(np.float32) for shape in SHAPES]
             for _ in range(steps)]
    return weights, grads


def _fastcnn_run(backend, make, weights, grads, between=None):
    with fastcnn.use_backend(backend):
        params = [Parameter(w.copy()) for w in weights]
        for p in params:
            p.ensure_backend()
        optimizer = make(params)
        results = []
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = fastcnn.get_backend().to_device(g.copy())
            if between is not None:
                results.append(between(params))
            optimizer.step()
        return [p.numpy() for p in params], results


def _torch_run(make, weights, grads, between=None):
    params = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in weights]
    optimizer = make(params)
    results = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.from_numpy(g.copy())
        if between is not None:
            results.append(between(params))
        optimizer.step()
    return [p.detach().numpy() for p in params], results


def _assert_same(ours, theirs, what):
    for i, (a, b) in enumerate(zip(ours, theirs)):
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE * scale, err_msg=f"{what}: array {i}")


PAIRS = {
    "rmsprop": (lambda ps: optim.RMSprop(ps, lr=0.01), lambda ps: torch.optim.RMSprop(ps, lr=0.01)),
    "rmsprop-centered-momentum-decay": (
        lambda ps: optim.RMSprop(ps, lr=0.01, alpha=0.9, momentum=0.8, centered=True, weight_decay=0.1),
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, momentum=0.8, centered=True,
                                       weight_decay=0.1)),
    "rmsprop-centered": (lambda ps: optim.RMSprop(ps, lr=0.003, centered=True, eps=1e-6),
                         lambda ps: torch.optim.RMSprop(ps, lr=0.003, centered=True, eps=1e-6)),
    "sgd-nesterov": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                     lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True)),
    "sgd-nesterov-decay": (
        lambda ps: optim.SGD(ps, lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.01),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.01)),
    "adam-keras-spellings": (lambda ps: optim.Adam(ps, learning_rate=0.01, beta_1=0.8, beta_2=0.99,
                                                   epsilon=1e-6),
                             lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    "adamw": (lambda ps: optim.AdamW(ps, lr=0.02, betas=(0.85, 0.99), weight_decay=0.5),
              lambda ps: torch.optim.AdamW(ps, lr=0.02, betas=(0.85, 0.99), weight_decay=0.5)),
    "adamw-default-decay": (lambda ps: optim.AdamW(ps, lr=0.01),
                            lambda ps: torch.optim.AdamW(ps, lr=0.01)),
    "adamw-keras-spellings": (
        lambda ps: optim.AdamW(ps, learning_rate=0.01, weight_decay=0.004, beta_1=0.8,
                               beta_2=0.99, epsilon=1e-6),
        lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.004)),
    "adamw-keras-positional-rate": (  # Keras' order: AdamW(learning_rate, weight_decay, ...)
        lambda ps: optim.AdamW(0.01, weight_decay=0.004).bind(ps),
        lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.004)),
}


@pytest.mark.parametrize("backend", usable_backends())
@pytest.mark.parametrize("pair", sorted(PAIRS))
@pytest.mark.parametrize("steps", [1, 4])
def test_optimizer_steps_match_pytorch(backend, pair, steps):
    ours, theirs = PAIRS[pair]
    weights, grads = _problem(steps=steps)
    _assert_same(_fastcnn_run(backend, ours, weights, grads)[0],
                 _torch_run(theirs, weights, grads)[0], f"{backend} {pair}")


@pytest.mark.parametrize("backend", usable_backends())
@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1),
    lambda ps: optim.RMSprop(ps, lr=0.01, weight_decay=0.1),
    lambda ps: optim.Adadelta(ps, weight_decay=0.1),
    lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1)], ids=["sgd", "adam", "rmsprop",
                                                               "adadelta", "adamw"])
def test_weight_decay_leaves_the_gradient_as_backward_left_it(backend, make):
    """torch.optim adds the L2 term to the gradient it uses, never to .grad: a gradient
    read after step() (a logged norm, a check against another engine) is the loss's."""
    weights, grads = _problem(steps=1)
    with fastcnn.use_backend(backend):
        params = [Parameter(w.copy()) for w in weights]
        for p, g in zip(params, grads[0]):
            p.ensure_backend()
            p.grad = fastcnn.get_backend().to_device(g.copy())
        make(params).step()
        for p, g in zip(params, grads[0]):
            np.testing.assert_array_equal(np.asarray(fastcnn.get_backend().to_host(p.grad)), g)


@pytest.mark.parametrize("backend", usable_backends())
@pytest.mark.parametrize("max_norm, scale", [(1.0, 1.0), (100.0, 1.0), (0.5, 1e-3)])
def test_clip_grad_norm_matches_pytorch_and_returns_the_total_norm(backend, max_norm, scale):
    weights, grads = _problem(seed=1, steps=2, scale=scale)

    norms = []
    ours_weights, _ = _fastcnn_run(
        backend, lambda ps: optim.SGD(ps, lr=0.1), weights, grads,
        between=lambda ps: norms.append(fastcnn.clip_grad_norm_(ps, max_norm)))
    torch_norms = []
    theirs_weights, _ = _torch_run(
        lambda ps: torch.optim.SGD(ps, lr=0.1), weights, grads,
        between=lambda ps: torch_norms.append(float(torch.nn.utils.clip_grad_norm_(ps, max_norm))))
    np.testing.assert_allclose(norms, torch_norms, rtol=1e-6)
    _assert_same(ours_weights, theirs_weights, f"{backend} clip_grad_norm_")


@pytest.mark.parametrize("backend", usable_backends())
def test_clip_grad_value_matches_pytorch(backend):
    weights, grads = _problem(seed=2, steps=2)
    ours, _ = _fastcnn_run(backend, lambda ps: optim.SGD(ps, lr=0.1), weights, grads,
                           between=lambda ps: fastcnn.clip_grad_value_(ps, 0.3))
    theirs, _ = _torch_run(lambda ps: torch.optim.SGD(ps, lr=0.1), weights, grads,
                           between=lambda ps: torch.nn.utils.clip_grad_value_(ps, 0.3))
    _assert_same(ours, theirs, f"{backend} clip_grad_value_")


def _keras_clipped(grads, clipnorm=None, clipvalue=None, global_clipnorm=None):
    """Keras' clipping of one step's gradients, in float64."""
    grads = [g.astype(np.float64) for g in grads]
    if clipvalue is not None:
        return [np.clip(g, -clipvalue, clipvalue) for g in grads]
    if clipnorm is not None:
        return [g * clipnorm / max(np.linalg.norm(g), clipnorm) for g in grads]
    total = np.sqrt(sum(np.sum(g * g) for g in grads))
    return [g * global_clipnorm / max(total, global_clipnorm) for g in grads]


@pytest.mark.parametrize("backend", usable_backends())
@pytest.mark.parametrize("clipping", [{"clipnorm": 1.5}, {"clipvalue": 0.4}, {"global_clipnorm": 2.0}])
def test_optimizer_clipping_follows_keras(backend, clipping):
    weights, grads = _problem(seed=3, steps=1)
    ours, _ = _fastcnn_run(backend, lambda ps: optim.SGD(ps, lr=0.1, **clipping), weights, grads)
    expected = [w - 0.1 * g for w, g in zip(weights, _keras_clipped(grads[0], **clipping))]
    _assert_same(ours, expected, f"{backend} {clipping}")
    assert optim.get(optim.SGD(lr=0.1, **clipping).get_config()).get_config() == \
        optim.SGD(lr=0.1, **clipping).get_config()


def test_clipping_options_are_exclusive_and_positive():
    with pytest.raises(ValueError, match="at most one of clipnorm, clipvalue"):
        optim.Adam(clipnorm=1.0, clipvalue=0.5)
    with pytest.raises(ValueError, match="clipnorm must be in"):
        optim.Adam(clipnorm=0.0)
    with pytest.raises(ValueError, match="norm_type=2 only"):
        fastcnn.clip_grad_norm_([], 1.0, norm_type=1)


def test_nesterov_needs_momentum_as_in_pytorch():
    with pytest.raises(ValueError, match="nesterov=True needs a momentum"):
        optim.SGD(lr=0.1, nesterov=True)


@pytest.mark.parametrize("make", [lambda: optim.RMSprop(lr=0.02, momentum=0.9, centered=True),
                                  lambda: optim.SGD(0.1, momentum=0.9, nesterov=True),
                                  lambda: optim.Adam(beta_1=0.5, beta_2=0.9),
                                  lambda: optim.AdamW(learning_rate=3e-3, weight_decay=0.004,
                                                      beta_1=0.8, epsilon=1e-7)])
def test_new_optimizer_configs_round_trip(make):
    optimizer = make()
    assert optim.get(optimizer.get_config()).get_config() == optimizer.get_config()


def test_rmsprop_is_in_the_registry_and_takes_keras_rho():
    assert "rmsprop" in optim.OPTIMIZERS
    assert optim.get({"name": "rmsprop", "rho": 0.9}).alpha == 0.9
