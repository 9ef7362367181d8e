"""One test of a layer, every backend (after Keras' ``run_layer_test``): ``check_layer``.

    check_layer(lambda: fastcnn.BatchNorm2d(3), (3, 5, 4), backend="numba",
                torch_twin=lambda: torch.nn.BatchNorm2d(3))

checks, for a layer made by ``make`` on per-sample inputs of ``input_shape``:

* the config round trip: the registry finds the class by name and ``from_config(get_config())``
  rebuilds an equal layer;
* save/load: a model of the layer, trained one step, saved and loaded, gives the same outputs
  and the same ``state_dict`` (weights and state such as running statistics);
* finite differences in float64 on the numpy backend: the gradient of the input and of every
  parameter, in training and in inference mode;
* PyTorch parity on identical weights (when ``torch_twin`` makes the torch module): forward,
  the input's and every parameter's gradient, the state after the pass and one SGD step,
  in training and in inference mode, on ``backend``.
"""

from __future__ import annotations

import numpy as np

import fastcnn
from fastcnn.layers import layer_class
from helpers import assert_relative_close, float64_numpy_backend, numerical_gradient, to_float64

FD_TOLERANCE = 1e-6
TORCH_RTOL, TORCH_ATOL = 1e-4, 1e-5


def _model(make, input_shape, seed=0):
    return fastcnn.Sequential([make()], seed=seed, input_shape=input_shape)


def _inputs(input_shape, batch, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch,) + tuple(input_shape)) * 1.5 + 0.5).astype(np.float32)


def check_config_round_trip(make, input_shape):
    layer = _model(make, input_shape).layers[0]
    cls = layer_class(type(layer).__name__)
    assert cls is type(layer), f"the registry gives {cls} for {type(layer).__name__}"
    again = cls.from_config(layer.get_config())
    fastcnn.Sequential([again], input_shape=input_shape)
    assert again.get_config() == layer.get_config()


def check_save_load(make, input_shape, tmp_path, backend, batch=4):
    x = _inputs(input_shape, batch)
    with fastcnn.use_backend(backend):
        model = _model(make, input_shape)
        model.compile(fastcnn.optim.SGD(lr=0.1), "mse")
        model.train()
        out = model.forward(x)
        model.backward(np.ones(out.shape, np.float32) / out.size)
        model.optimizer.step()
        model.eval()
        path = tmp_path / f"{type(model.layers[0]).__name__}-{backend}.npz"
        model.save(path)
        loaded = fastcnn.load_model(path)
        before, after = model.state_dict(), loaded.state_dict()
        assert before.keys() == after.keys()
        for key in before:
            np.testing.assert_array_equal(after[key], before[key], err_msg=key)
        np.testing.assert_array_equal(fastcnn.to_numpy(loaded.forward(x)),
                                      fastcnn.to_numpy(model.forward(x)))


def check_finite_differences(make, input_shape, batch=3, modes=(True, False)):
    """d sum(output * projection) / d input and / d every parameter, in float64."""
    x = _inputs(input_shape, batch).astype(np.float64)
    with float64_numpy_backend():
        for training in modes:
            model = _model(make, input_shape)
            layer = model.layers[0]
            to_float64(model.parameters())
            for buffer in layer.buffers.values():
                buffer.data = np.array(buffer.data, dtype=np.float64)
            projection = np.random.default_rng(1).standard_normal(
                (batch,) + tuple(layer.output_shape))

            def value():
                return float((layer.forward(x, training=training) * projection).sum())

            value()
            analytic = {"input": np.array(layer.backward(projection.copy()))}
            analytic.update({name: np.array(p.grad) for name, p in layer.params.items()})
            numeric = {"input": numerical_gradient(value, x)}
            numeric.update({name: numerical_gradient(value, p.data) for name, p in layer.params.items()})
            for name in analytic:
                assert np.abs(numeric[name]).max() > 0, f"{name}: the check would be vacuous"
                assert_relative_close(analytic[name], numeric[name], FD_TOLERANCE,
                                      f"{type(layer).__name__} {name} (training={training})")


def check_torch_parity(make, input_shape, torch_twin, backend, batch=4, modes=(True, False)):
    import torch

    x = _inputs(input_shape, batch)
    projection = np.random.default_rng(2).standard_normal((batch,) + tuple(
        _model(make, input_shape).output_shape)).astype(np.float32)
    for training in modes:
        with fastcnn.use_backend(backend):
            model = _model(make, input_shape)
            net = torch_twin()
            state = {key.split(".", 1)[1]: torch.from_numpy(value)
                     for key, value in model.state_dict().items()}
            net.load_state_dict(state)
            net.train(training)
            model.train(training)
            out = model.forward(x)
            model.backward(projection)
            tx = torch.from_numpy(x).requires_grad_(True)
            tout = net(tx)
            (tout * torch.from_numpy(projection)).sum().backward()
            where = f"{type(model.layers[0]).__name__} on {backend} (training={training})"
            np.testing.assert_allclose(fastcnn.to_numpy(out), tout.detach().numpy(),
                                       rtol=TORCH_RTOL, atol=TORCH_ATOL, err_msg=f"{where}: output")
            for name, param in model.named_parameters():
                got = fastcnn.to_numpy(param.grad)
                want = dict(net.named_parameters())[name.split(".", 1)[1]].grad.numpy()
                np.testing.assert_allclose(got, want, rtol=TORCH_RTOL, atol=TORCH_ATOL,
                                           err_msg=f"{where}: grad of {name}")
            if model.parameters():
                optimizer = fastcnn.optim.SGD(model.parameters(), lr=0.1)
                torch.optim.SGD(net.parameters(), lr=0.1).step()
                optimizer.step()
            torch_state = net.state_dict()
            for key, value in model.state_dict().items():
                np.testing.assert_allclose(value, torch_state[key.split(".", 1)[1]].numpy(),
                                           rtol=TORCH_RTOL, atol=TORCH_ATOL,
                                           err_msg=f"{where}: {key} after one SGD step")


def check_input_gradient_parity(make, input_shape, torch_twin, backend, batch=4, training=True):
    """The layer's input gradient against torch's, on ``backend``."""
    import torch

    x = _inputs(input_shape, batch)
    with fastcnn.use_backend(backend):
        model = _model(make, input_shape)
        layer = model.layers[0]
        net = torch_twin()
        net.load_state_dict({key.split(".", 1)[1]: torch.from_numpy(value)
                             for key, value in model.state_dict().items()})
        net.train(training)
        out = layer(x, training=training)
        projection = np.random.default_rng(3).standard_normal(tuple(out.shape)).astype(np.float32)
        dx = layer.backward(fastcnn.functional.to_backend(projection.copy()), need_input_grad=True)
        tx = torch.from_numpy(x).requires_grad_(True)
        (net(tx) * torch.from_numpy(projection)).sum().backward()
        np.testing.assert_allclose(fastcnn.to_numpy(dx), tx.grad.numpy(), rtol=TORCH_RTOL,
                                   atol=TORCH_ATOL, err_msg=f"{type(layer).__name__} dx on {backend}")


def check_layer(make, input_shape, backend, tmp_path, torch_twin=None, finite_differences=True,
                modes=(True, False)):
    """Every check above for the layer ``make()`` makes, on ``backend`` (the finite
    differences run on the float64 numpy reference)."""
    check_config_round_trip(make, input_shape)
    check_save_load(make, input_shape, tmp_path, backend)
    if finite_differences:
        check_finite_differences(make, input_shape, modes=modes)
    if torch_twin is not None:
        check_torch_parity(make, input_shape, torch_twin, backend, modes=modes)
        for training in modes:
            check_input_gradient_parity(make, input_shape, torch_twin, backend, training=training)
