"""A Conv2D (with its activation) followed by a MaxPool2D runs as one fused operation.

Sequential plans the fusion; fastcnn.functional runs a backend's fused kernel
(contract.FUSED) or, for a backend without one, its two operations. Either way
the model must compute exactly what the layers compute one by one.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from conftest import usable_backends
from fastcnn import functional, layers
from fastcnn.functional import KernelArgumentError
from fastcnn.kernels import contract

CPU_BACKENDS = [name for name in usable_backends() if name in ("numpy", "numba", "cython")]


def network(pool=2, pool_stride=None, activation_layer=True, pool_type=layers.MaxPool2D):
    stack = [layers.Conv2D(1, 4, 3, padding=1, name="conv")]
    stack += [layers.ReLU(name="relu")] if activation_layer else []
    stack += [pool_type(pool, pool_stride, name="pool"), layers.Flatten(name="flatten"),
              layers.Dense(80, 10, name="fc")]  # 4 x 4 x 5 after every pool here
    model = fastcnn.Sequential(stack, input_shape=(1, 9, 11), seed=5)
    return model.compile("sgd", "cross_entropy", lr=0.1)


def plan_names(model):
    return model.plan("train").describe()


def test_the_plan_fuses_a_max_pool_whose_window_is_its_stride():
    assert plan_names(network()) == [("conv", "relu", "pool"), ("flatten", None, None),
                                     ("fc", None, None)]
    assert plan_names(network(activation_layer=False))[0] == ("conv", None, "pool")
    assert plan_names(network(pool=3, pool_stride=2))[:2] == [("conv", "relu", None),
                                                              ("pool", None, None)]
    assert plan_names(network(pool_type=layers.AvgPool2D))[1] == ("pool", None, None)


def unfused(model):
    """The model with every fused max pool run as a step of its own."""
    model.fusions = ("activation",)
    return model


def _fused_and_separate(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 1, 9, 11)).astype(np.float32)
    y = rng.integers(0, 10, 5)
    with fastcnn.use_backend(backend):
        fused, separate = network(), unfused(network())
        assert len(fused.plan("train")) == len(separate.plan("train")) - 1
        for model in (fused, separate):
            model.fit(x, y, epochs=3, batch_size=2, shuffle=False, verbose=0)
        return ([np.asarray(p.data) for _, p in fused.named_parameters()] + [fused.predict(x)],
                [np.asarray(p.data) for _, p in separate.named_parameters()]
                + [separate.predict(x)])


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_fused_training_steps_equal_the_layer_by_layer_ones(backend, monkeypatch):
    """Bit for bit where the fused kernel does the same arithmetic: numba's direct
    first-layer kernel (below) sums in another order, so it is off here."""
    monkeypatch.setenv("FASTCNN_DIRECT", "0")
    fused, separate = _fused_and_separate(backend)
    for a, b in zip(fused, separate):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif("numba" not in CPU_BACKENDS, reason="numba unusable here")
def test_the_direct_first_layer_trains_as_the_layers_do():
    """numba's direct kernel (kernels/numba_cpu/direct.py) for this one-channel layer:
    the same training, to float32 rounding."""
    fused, separate = _fused_and_separate("numba")
    for a, b in zip(fused, separate):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", [name for name in CPU_BACKENDS if name != "numpy"])
def test_the_compiled_cpu_backends_fuse_natively(backend):
    with fastcnn.use_backend(backend):
        assert all(callable(getattr(fastcnn.get_backend(), op, None)) for op in contract.FUSED)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_fused_convolution_never_writes_into_the_pool_layers_buffers(backend, monkeypatch):
    """The plan runs the max pool inside the convolution's pass, into the convolution's
    own buffers: the pool layer's workspace stays empty, and calling the layers one by one
    afterwards gives what the fused step gave (bit for bit: numba's direct first-layer
    kernel, which sums in another order, is off)."""
    monkeypatch.setenv("FASTCNN_DIRECT", "0")
    x = np.random.default_rng(1).standard_normal((3, 1, 9, 11)).astype(np.float32)
    with fastcnn.use_backend(backend):
        model = network()
        fused = np.array(model.plan("forward").steps[0].forward(functional.to_backend(x), False))
        conv, relu, pool = model.layers[:3]
        assert not pool.workspace._buffers and not relu.workspace._buffers
        alone = pool.forward(relu.forward(conv.forward(functional.to_backend(x))))
        np.testing.assert_array_equal(fused, np.array(alone))


def test_functional_checks_the_fused_pools_buffers():
    with fastcnn.use_backend("numpy"):
        x = np.zeros((2, 1, 6, 6), np.float32)
        weight = np.zeros((3, 1, 3, 3), np.float32)
        out = np.zeros((2, 3, 4, 4), np.float32)
        cols = np.zeros((2, 9, 16), np.float32)
        with pytest.raises(KernelArgumentError, match="conv2d_maxpool_forward: pooled"):
            functional.conv2d_maxpool_forward(x, weight, None, 1, 0, "relu", 2, cols, out,
                                              np.zeros((2, 3, 3, 3), np.float32),
                                              np.zeros((2, 3, 2, 2), np.int32))
        with pytest.raises(KernelArgumentError, match="None only without cols"):
            functional.conv2d_maxpool_forward(x, weight, None, 1, 0, "relu", 2, cols, None,
                                              np.zeros((2, 3, 2, 2), np.float32), None)
        with pytest.raises(KernelArgumentError, match="conv2d_maxpool_backward: argmax"):
            functional.conv2d_maxpool_backward(np.zeros((2, 3, 2, 2), np.float32),
                                               np.zeros((2, 3, 2, 2), np.float32), out, weight,
                                               cols, 1, 0, "relu", None, np.zeros_like(weight),
                                               None, None, np.zeros_like(out))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("keep_out", [True, False])
def test_the_fused_pool_breaks_ties_and_nans_as_the_max_pool_does(backend, keep_out):
    """A 1x1 convolution with weight 1 passes x through; its fused 2x2 pool (numba: all of a
    sample's planes in one loop) must pick the first maximum, and the first NaN, of each
    window as maxpool2d_forward does; with out None (before a backward pass _from_input)
    as with it, odd sizes leaving a row and a column over."""
    from fastcnn.kernels import numpy_backend

    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, (3, 1, 7, 9)).astype(np.float32)  # many ties
    x[0, 0, 2, 3] = x[1, 0, 4, 0] = x[2, 0, 0, 1] = np.nan
    x[2, 0, 1, 0] = np.nan  # two NaNs in one window: the first wins
    weight = np.ones((1, 1, 1, 1), np.float32)
    want, want_at = np.empty((3, 1, 3, 4), np.float32), np.empty((3, 1, 3, 4), np.int32)
    numpy_backend.maxpool2d_forward(x, 2, 2, want, want_at)
    with fastcnn.backend.use_backend(backend):
        pooled, argmax = np.empty_like(want), np.empty_like(want_at)
        out = np.empty_like(x) if keep_out else None
        functional.conv2d_maxpool_forward(x, weight, None, 1, 0, None, 2, None, out, pooled,
                                          argmax)
    np.testing.assert_array_equal(argmax, want_at)
    np.testing.assert_array_equal(pooled, want)  # NaNs in the same places
