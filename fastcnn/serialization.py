"""Saving and loading whole models as one .npz: architecture (JSON), weights,
optimizer state and the training position, written atomically."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from . import optim as optim_registry
from .errors import CheckpointError
from .fileio import atomic_write
from .layers import Dropout, from_config

FORMAT = 1
_META = "__fastcnn__"


def save_model(model, path) -> None:
    """Write ``model`` to ``path`` (.npz). See :meth:`fastcnn.Sequential.save`."""
    if not model.built:
        raise RuntimeError("cannot save a model that is not built: train it or pass input_shape=...")
    meta = {
        "format": FORMAT,
        "model": model.get_config(),
        "input_shape": list(model.input_shape),
        "epoch": model.epoch,
        "rng_state": model.rng.bit_generator.state,
        "dropout": {layer.name: layer.get_state() for layer in model.layers
                    if isinstance(layer, Dropout)},
        "loss": model.loss.get_config() if model.loss is not None else None,
        "metrics": model.metrics,
        "optimizer": None,
    }
    arrays = {f"param/{name}": param.numpy() for name, param in model.named_parameters()}
    if model.optimizer is not None:
        meta["optimizer"] = {**model.optimizer.get_config(), "iterations": model.optimizer.iterations}
        for name, param in model.named_parameters():
            backend = param._module()
            for slot, value in param.state.items():
                arrays[f"optim/{name}/{slot}"] = np.asarray(backend.to_host(value))
    arrays[_META] = np.array(json.dumps(meta))
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


def _checked_array(path, key: str, value: np.ndarray, shape: tuple) -> np.ndarray:
    """``value`` if it is a finite float32 array of ``shape``; else CheckpointError naming it."""
    problem = None
    if value.dtype != np.float32:
        problem = f"dtype {value.dtype}, expected float32"
    elif tuple(value.shape) != tuple(shape):
        problem = f"shape {tuple(value.shape)}, the model needs {tuple(shape)}"
    elif not np.isfinite(value).all():
        problem = f"{int(np.isnan(value).sum())} NaN and {int(np.isinf(value).sum())} infinite values"
    if problem:
        raise CheckpointError(f"{path}: array {key!r} has {problem}; the file is damaged or was "
                              "not written by this model: re-save it or use another checkpoint")
    return np.ascontiguousarray(value)


def _count(path, what: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(f"{path}: {what} is {value!r}, expected a whole number >= 0")
    return value


def _restore_rng(path, model, state) -> None:
    generator = model.rng.bit_generator
    if not isinstance(state, dict) or state.get("bit_generator") != type(generator).__name__:
        raise CheckpointError(f"{path}: the shuffling RNG state (rng_state) is not a "
                              f"{type(generator).__name__} state; the file is damaged")
    try:
        generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise CheckpointError(f"{path}: the shuffling RNG state (rng_state) is invalid: {exc}") from None


def _restore_optimizer(path, model, meta, arrays) -> None:
    """Compile with the saved loss and optimizer and put back every optimizer slot, checked."""
    optimizer = None
    if meta["optimizer"] is not None:
        opt_config = dict(meta["optimizer"])
        iterations = _count(path, "the optimizer's iteration count", opt_config.pop("iterations"))
        try:
            optimizer = optim_registry.get(opt_config)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: the saved optimizer {opt_config} is invalid: {exc}") from None
        optimizer.iterations = iterations
    try:
        model.compile(optimizer or "adam", meta["loss"], metrics=meta["metrics"] or ["accuracy"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: the saved loss or metrics are invalid: {exc}") from None
    params = dict(model.named_parameters())
    from .backend import get_backend

    for key, value in arrays.items():
        if not key.startswith("optim/"):
            continue
        name, _, slot = key[len("optim/"):].rpartition("/")
        if name not in params:
            raise CheckpointError(f"{path}: optimizer state {key!r} is for unknown parameter {name!r}")
        if slot not in model.optimizer.slots:
            raise CheckpointError(f"{path}: optimizer state {key!r}: {model.optimizer.name} has no "
                                  f"slot {slot!r} (its slots: {', '.join(model.optimizer.slots)})")
        checked = _checked_array(path, key, value, params[name].shape)
        params[name].state[slot] = get_backend().to_device(checked)


def load_model(path):
    """Rebuild a model saved with ``model.save(path)``: same layers, weights, optimizer
    state and epoch counter, ready to predict or to resume ``fit(initial_epoch=model.epoch)``.

    Every array read (weights, optimizer slots) is checked for shape, dtype and
    finiteness against the model, and the RNG and dropout states for type, before
    any kernel sees them; a mismatch is a CheckpointError naming the array and the file.
    """
    from .model import Sequential

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no saved model at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable fastcnn model (truncated or corrupted: "
                              f"{exc}); re-save it or use another checkpoint") from None
    if _META not in arrays:
        raise CheckpointError(f"{path} is an .npz file but not a fastcnn model (no {_META} entry)")
    try:
        meta = json.loads(str(arrays.pop(_META)))
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{path} has format {meta.get('format')}, this fastcnn reads {FORMAT}")
        config = meta["model"]
        layers = [from_config(name, layer_config) for name, layer_config in config["layers"]]
        model = Sequential(layers, seed=config["seed"], input_shape=meta["input_shape"],
                           name=config["name"])
        params = dict(model.named_parameters())
        weights = {key[len("param/"):]: value for key, value in arrays.items()
                   if key.startswith("param/")}
        missing = sorted(set(params) - set(weights))
        unexpected = sorted(set(weights) - set(params))
        if missing or unexpected:
            raise CheckpointError(f"{path}: the weights do not match the saved architecture: "
                                  f"missing {missing}, unexpected {unexpected}")
        for name, value in weights.items():
            params[name].assign(_checked_array(path, f"param/{name}", value, params[name].shape))
        model.epoch = _count(path, "the epoch counter", meta["epoch"])
        _restore_rng(path, model, meta["rng_state"])
        for layer in model.layers:
            if isinstance(layer, Dropout) and layer.name in meta["dropout"]:
                state = meta["dropout"][layer.name]
                layer.set_state({key: _count(path, f"dropout {layer.name!r} {key}", state[key])
                                 for key in ("seed", "calls")})
        if meta["loss"] is not None:
            _restore_optimizer(path, model, meta, arrays)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path} does not describe a valid model: {exc}") from None
    return model


def save_weights(model, path) -> None:
    """Write the weights of ``model`` to ``path`` (.npz of ``param/<name>`` arrays), atomically."""
    if not model.built:
        raise RuntimeError("cannot save the weights of a model that is not built")
    arrays = {f"param/{name}": param.numpy() for name, param in model.named_parameters()}
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


def load_weights(model, path) -> None:
    """Put the weights of ``path`` (from save_weights or save) into ``model``, every array
    checked against it first (names, shape, dtype, finiteness); nothing changes on error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no saved weights at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key[len("param/"):]: archive[key] for key in archive.files
                      if key.startswith("param/")}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable weights file (truncated or corrupted: "
                              f"{exc})") from None
    params = dict(model.named_parameters())
    missing, unexpected = sorted(set(params) - set(arrays)), sorted(set(arrays) - set(params))
    if missing or unexpected:
        raise CheckpointError(f"{path}: the weights do not match the model: missing {missing}, "
                              f"unexpected {unexpected}")
    checked = {name: _checked_array(path, f"param/{name}", value, params[name].shape)
               for name, value in arrays.items()}
    for name, value in checked.items():
        params[name].assign(value)
