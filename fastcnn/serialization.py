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
        "loss": model.loss.name if model.loss is not None else None,
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


def load_model(path):
    """Rebuild a model saved with ``model.save(path)``: same layers, weights, optimizer
    state and epoch counter, ready to predict or to resume ``fit``."""
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
        model.load_state_dict({key[len("param/"):]: value for key, value in arrays.items()
                               if key.startswith("param/")})
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} does not describe a valid model: {exc}") from None
    model.epoch = int(meta["epoch"])
    model.rng.bit_generator.state = meta["rng_state"]
    for layer in model.layers:
        if isinstance(layer, Dropout) and layer.name in meta["dropout"]:
            layer.set_state(meta["dropout"][layer.name])
    if meta["loss"] is not None:
        optimizer = None
        if meta["optimizer"] is not None:
            opt_config = dict(meta["optimizer"])
            iterations = opt_config.pop("iterations")
            optimizer = optim_registry.get(opt_config)
            optimizer.iterations = int(iterations)
        model.compile(optimizer or "adam", meta["loss"], metrics=meta["metrics"] or ["accuracy"])
        backend_params = dict(model.named_parameters())
        from .backend import get_backend

        for key, value in arrays.items():
            if key.startswith("optim/"):
                name, slot = key[len("optim/"):].rsplit("/", 1)
                if name not in backend_params:
                    raise CheckpointError(f"{path}: optimizer state for unknown parameter {name}")
                backend_params[name].state[slot] = get_backend().to_device(
                    np.ascontiguousarray(value, dtype=np.float32))
    return model

