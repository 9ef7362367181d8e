"""Sequential: a stack of layers with Keras-style compile/fit/evaluate/predict and
PyTorch-style parameters, state dicts and per-layer forward/backward."""

from __future__ import annotations

import math

import numpy as np

from . import functional
from . import losses as loss_registry
from . import optim as optim_registry
from .backend import backend_name, get_backend
from .batches import class_indices
from .callbacks import CallbackList, History, ProgressBar, resolve_verbose
from .errors import InputError
from .inputs import as_images, whole_number
from .layers import Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, ReLU, Sigmoid, Softmax
from .metrics import roc_auc, top_k_correct, top_k_of

_FUSABLE = {ReLU: "relu", Sigmoid: "sigmoid"}


class Sequential:
    """Layers applied in order.

    ``seed`` fixes the initial weights, dropout masks and shuffling, so a seeded
    run is reproducible on the same backend. ``input_shape`` (per sample, e.g.
    (1, 28, 28)) builds the model at once; otherwise the first batch builds it.
    Unnamed layers are named by position ("0", "1", ...) like torch.nn.Sequential,
    so parameter names read "0.weight", "3.bias", or "conv1.weight" for named layers.
    """

    def __init__(self, layers, seed: int | None = None, input_shape: tuple | None = None,
                 name: str = "sequential"):
        self.layers: list[Layer] = list(layers)
        if not self.layers or not all(isinstance(layer, Layer) for layer in self.layers):
            raise TypeError("Sequential needs a non-empty list of fastcnn layers")
        for index, layer in enumerate(self.layers):
            if layer.name is None:
                layer.name = str(index)
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be unique, got {names}")
        self.name = name
        self.seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        self.rng = np.random.default_rng(self.seed)
        self.loss = None
        self.optimizer = None
        self.schedule = None
        self.metrics: list[str] = []
        self.epoch = 0
        self.stop_training = False
        self._fit_state: dict = {}
        if input_shape is not None:
            self.build(input_shape)

    # ---- building ---------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.layers[0].built

    @property
    def input_shape(self) -> tuple | None:
        return self.layers[0].input_shape

    @property
    def output_shape(self) -> tuple | None:
        return self.layers[-1].output_shape

    def build(self, input_shape) -> "Sequential":
        """Create every layer's weights for per-sample inputs of ``input_shape``."""
        shape = tuple(int(s) for s in input_shape)
        init_rng = np.random.default_rng([self.seed, 1])
        for layer in self.layers:
            try:
                shape = layer.build(shape, init_rng)
            except ValueError as exc:
                raise InputError(f"cannot build layer {layer.name!r}: {exc}") from None
        if len(shape) != 1:
            raise InputError(f"the last layer must output (N, classes); it outputs (N, {shape}): "
                             "add Flatten and Dense layers")
        return self

    def _plan(self, training_loss: bool):
        """(layer, fused activation, fused pool) in run order: a Conv2D/Dense followed by
        a ReLU or Sigmoid runs as one kernel, and a Conv2D (with its activation) followed
        by a MaxPool2D whose window is its stride runs with it (functional's fused
        operation); a final Softmax before cross-entropy is folded into the fused loss."""
        layers = self.layers
        if training_loss and isinstance(layers[-1], Softmax) and \
                isinstance(self.loss, loss_registry.CrossEntropy):
            layers = layers[:-1]
        plan, i = [], 0
        while i < len(layers):
            layer = layers[i]
            i += 1
            fused = _FUSABLE.get(type(layers[i])) if i < len(layers) and \
                isinstance(layer, (Conv2D, Dense)) and layer.activation is None else None
            i += fused is not None
            pool = layers[i] if i < len(layers) and isinstance(layer, Conv2D) and \
                type(layers[i]) is MaxPool2D and layers[i].kernel_size == layers[i].stride else None
            i += pool is not None
            plan.append((layer, fused, pool))
        return plan

    @property
    def outputs_logits(self) -> bool:
        """True when the network ends in raw scores: its last weighted layer is a Conv2D or
        Dense without activation, followed by nothing but Flatten or Dropout. ``predict``
        softmaxes exactly these; any other network's output is returned as it is."""
        for layer in reversed(self.layers):
            if isinstance(layer, (Flatten, Dropout)):
                continue
            return isinstance(layer, (Conv2D, Dense)) and layer.activation is None
        return False

    # ---- the low-level path -----------------------------------------------------------
    def parameters(self, trainable_only: bool = False):
        return [p for _, p in self.named_parameters(trainable_only)]

    def named_parameters(self, trainable_only: bool = False):
        """[(name, Parameter)] with PyTorch-style dotted names, in layer order."""
        if not self.built:
            raise RuntimeError("the model is not built yet: pass input_shape=... or call build()")
        return [(f"{layer.name}.{key}", param) for layer in self.layers
                for key, param in layer.params.items() if param.trainable or not trainable_only]

    def _prepare(self, x):
        """Build from x if needed, move weights to the active backend, check x; returns host float32."""
        x = as_images(x, self.input_shape)
        if not self.built:
            self.build(x.shape[1:])
        for param in self.parameters():
            param.ensure_backend()
        return x

    def _stage(self, host_batch, role: str = "input"):
        backend = get_backend()
        if hasattr(backend, "copy_to_device"):
            buffer = self._workspace(role, host_batch.shape, host_batch.dtype)
            backend.copy_to_device(host_batch, buffer)
            return buffer
        return functional.to_backend(host_batch, role,
                                     dtype=None if host_batch.dtype.kind == "f" else host_batch.dtype)

    def _workspace(self, role, shape, dtype=np.float32):
        if not hasattr(self, "_buffers"):
            from .parameter import Workspace

            self._buffers = Workspace()
        return self._buffers.get(role, shape, dtype)

    def forward(self, x, training: bool = False):
        """x: host array or torch tensor (converted as in :mod:`fastcnn.inputs`) or backend
        array (N, *input_shape) -> network output (N, L) on the backend: logits, or
        probabilities when the last layer is Softmax. The result is a reused buffer."""
        if functional.is_host_array(x) or not self.built:
            x = self._stage(self._prepare(x))
        else:
            x = functional.to_backend(x, "x")
            self.layers[0].check_input(x)
        return self._run(x, self._plan(training_loss=False), training)

    def _run(self, x, plan, training, keep_for_backward: bool = True):
        """x through ``plan``; ``keep_for_backward`` False (predict, evaluate) lets the
        convolutions skip keeping their im2col columns."""
        for layer, fused, pool in plan:
            if isinstance(layer, (Conv2D, Dense)):
                layer.fused_activation = fused
            if isinstance(layer, Conv2D):
                layer.keep_for_backward = keep_for_backward
                layer.fused_pool = pool
            x = layer.forward(x, training=training)
            if isinstance(layer, Conv2D):
                layer.keep_for_backward = True
                layer.fused_pool = None
            if fused is not None:
                # the fused activation lives in the layer's saved state only: a later
                # stand-alone call of the layer must not apply its follower's activation
                layer.fused_activation = None
        self._last_plan = plan
        self._last_output_shape = tuple(x.shape)
        return x

    def backward(self, dout) -> None:
        """Back-propagate d(loss)/d(output) (N, L) through the layers of the last forward
        call, writing every trainable parameter's ``grad``. dout may be a backend array,
        a NumPy array of any float dtype or a torch tensor."""
        plan = getattr(self, "_last_plan", None)
        if plan is None:
            raise RuntimeError("call forward() before backward()")
        dout = functional.to_backend(dout, "dout (the gradient of the last forward output)",
                                     shape=self._last_output_shape)
        first_needed = next((i for i, (layer, *_) in enumerate(plan)
                             if any(p.trainable for p in layer.params.values())), len(plan))
        for i in range(len(plan) - 1, first_needed - 1, -1):
            dout = plan[i][0].backward(dout, need_input_grad=i > first_needed)

    def zero_grad(self) -> None:
        for param in self.parameters():
            param.zero_grad()

    def __call__(self, x, training: bool = False):
        return self.forward(x, training)

    # ---- compile / fit ----------------------------------------------------------------------
    def compile(self, optimizer="adam", loss="cross_entropy", metrics=("accuracy",),
                lr: float | None = None, schedule=None) -> "Sequential":
        """Choose the optimizer (instance or name), loss ("cross_entropy", "mse") and
        metrics ("accuracy", "roc_auc", "top_k_accuracy" (k=5) or "top_3_accuracy", or
        metrics.TopKAccuracy(k); one or a list). ``lr`` overrides the
        optimizer's learning rate. ``schedule``: a :mod:`fastcnn.schedules` object
        given without an optimizer, which fit binds to this one and steps."""
        from .schedules import LRScheduler

        if schedule is not None and not isinstance(schedule, LRScheduler):
            raise TypeError(f"schedule must be a fastcnn.schedules object (StepLR, "
                            f"CosineAnnealingLR, OneCycleLR), got {schedule!r}")
        self.schedule = schedule
        self.loss = loss_registry.get(loss)
        self.optimizer = optim_registry.get(optimizer, lr)
        metrics = [metrics] if isinstance(metrics, str) else list(metrics or [])
        unknown = [m for m in metrics if top_k_of(m) is None and
                   m not in ("accuracy", "acc", "roc_auc", "auc", "loss")]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; fastcnn knows accuracy, roc_auc and "
                             "top_k_accuracy (top_3_accuracy, TopKAccuracy(k))")
        self.metrics = [f"top_{top_k_of(m)}_accuracy" if top_k_of(m) is not None else
                        "roc_auc" if m in ("roc_auc", "auc") else "accuracy" for m in metrics
                        if m != "loss"]
        if self.built:
            self.optimizer.bind(self.parameters())
        return self

    def _require_compiled(self):
        if self.loss is None:
            raise RuntimeError("call model.compile(optimizer, loss) before fit/evaluate")

    def train_step(self, x, y, plan=None, weights=None):
        """One optimisation step on a staged batch: x, y (and per-sample weights (N,) or
        None) backend arrays. Returns the loss stats (2,) [mean loss, correct] on the
        backend (no host sync)."""
        logits = self._run(x, plan or self._plan(training_loss=True), training=True)
        self._train_output = logits
        stats = self.loss.compute(logits, y, weights)
        self.backward(self.loss.grad)
        self.optimizer.step()
        return stats

    def _targets(self, y, n, weighted: bool = False):
        return self.loss.targets(y, self.output_shape[0], n, weighted)

    def _validation(self, x, y, validation_data, validation_split):
        """(x, y, x_val, y_val): the held-out part as Keras takes it (the last fraction of
        x before shuffling), or the given pair, checked; x_val None without validation."""
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                shown = (f"a {type(validation_data).__name__} of {len(validation_data)}"
                         if isinstance(validation_data, (tuple, list)) else type(validation_data).__name__)
                raise InputError(f"validation_data must be a pair (x_val, y_val), got {shown}")
            x_val = as_images(validation_data[0], self.input_shape)
            return x, y, x_val, self._targets(validation_data[1], len(x_val))
        if not validation_split:
            return x, y, None, None
        if isinstance(validation_split, bool) or not 0.0 < float(validation_split) < 1.0:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        cut = len(x) - int(math.ceil(len(x) * float(validation_split)))
        if cut < 1:
            raise InputError(f"validation_split={validation_split} of {len(x)} samples leaves no "
                             "training samples: lower it or pass more data")
        return x[:cut], y[:cut], x[cut:], y[cut:]

    def fit(self, x, y=None, epochs: int = 1, batch_size: int = 32, validation_data=None,
            validation_split: float = 0.0, shuffle: bool = True, callbacks=None,
            verbose="auto", initial_epoch: int = 0, class_weight=None, sample_weight=None,
            steps_per_epoch: int | None = None, augment=None) -> History:
        """Train epochs ``initial_epoch`` .. ``epochs - 1`` (Keras' rule: each call trains
        ``epochs - initial_epoch`` epochs; resume a loaded checkpoint with
        ``initial_epoch=model.epoch``, and epoch numbers in logs and History stay absolute).

        x: images (see :mod:`fastcnn.inputs`); y: labels (N,) or one-hot (N, L). Or x is
        a generator or any iterable of ``(x, y)`` / ``(x, y, sample_weight)`` batches and
        y is left out (see :class:`fastcnn.batches.IterableBatches`); ``steps_per_epoch``
        then says how many batches make an epoch (with arrays: the first that many).
        ``validation_split`` holds out the last fraction of x before shuffling
        (Keras' rule). ``sample_weight`` (N,) and ``class_weight`` ({class: weight},
        classes left out weigh 1) weight each sample's loss as in Keras: the loss is
        sum(w_i * loss_i) / N. ``augment``: a callable on each host batch (N, C, H, W),
        e.g. :class:`fastcnn.augment.RandomAffine`. ``verbose``: 0 silent, 1 a progress
        bar, 2 one line per epoch, "auto" (default) 1 on a terminal and 2 when output is
        redirected. Returns a History whose ``history`` maps each log key (loss,
        accuracy, val_loss, ...) to per-epoch values; ``model.epoch`` counts every epoch
        trained.
        """
        from .batches import ArrayBatches, IterableBatches, array_converter, is_batch_source
        from .inputs import sample_weights

        self._require_compiled()
        epochs = whole_number(epochs, "epochs", 0)
        batch_size = whole_number(batch_size, "batch_size", 1)
        start = whole_number(initial_epoch, "initial_epoch", 0)
        if steps_per_epoch is not None:
            steps_per_epoch = whole_number(steps_per_epoch, "steps_per_epoch", 1)
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be a callable on a batch of images, such as "
                            f"fastcnn.augment.RandomAffine(...), got {augment!r}")
        verbose = resolve_verbose(verbose)
        if is_batch_source(x):
            if y is not None or sample_weight is not None or validation_split:
                raise InputError("fit on a generator takes its batches as (x, y) or (x, y, "
                                 "sample_weight) tuples: leave out y, sample_weight and "
                                 "validation_split (pass validation_data instead)")
            source = IterableBatches(x, array_converter(self, class_weight, augment is not None),
                                     steps_per_epoch, augment)
            source.first()
            x_val, y_val = self._validation(None, None, validation_data, 0.0)[2:]
        else:
            if y is None:
                raise InputError("fit(x, y) needs the targets y, unless x is a generator or "
                                 "iterable of (x, y) batches")
            x = self._prepare(x)
            y = self._targets(y, len(x), class_weight is not None or sample_weight is not None)
            classes, count = class_indices(y, self.output_shape[0]) if class_weight is not None \
                else (None, None)
            weights = sample_weights(len(x), sample_weight, class_weight, classes, count)
            x, y, x_val, y_val = self._validation(x, y, validation_data, validation_split)
            weights = None if weights is None else weights[:len(x)]
            source = ArrayBatches(x, y, weights, batch_size, shuffle, self.rng, steps_per_epoch,
                                  augment)
        self.optimizer.bind(self.parameters())
        steps = source.steps
        history = History()
        # History and the progress bar come last: they see what callbacks add to the
        # logs (RocAuc's val_roc_auc), as in Keras
        callback_list = list(callbacks or []) + ([ProgressBar(verbose)] if verbose else [])
        if self.schedule is not None and self.schedule not in callback_list:
            callback_list.insert(0, self.schedule)
        callback_list.append(history)
        hooks = CallbackList(callback_list, self)
        top_k = {name: top_k_of(name) for name in self.metrics if top_k_of(name)}
        logged = ["loss", "accuracy", *top_k]
        logged += [f"val_{key}" for key in ["loss", "accuracy", *top_k]] if x_val is not None else []
        logged += [key for callback in callback_list for key in getattr(callback, "adds_logs", ())]
        self.stop_training = False
        self._fit_state = {"epochs": epochs, "steps": steps, "batch_size": batch_size,
                           "logged": logged, "initial_epoch": start}
        self.history = history
        backend = get_backend()
        plan = self._plan(training_loss=True)
        frozen = self._frozen_prefix(plan) if isinstance(source, ArrayBatches) and \
            augment is None else 0
        hooks.on_train_begin()
        if frozen and start < epochs:
            # the frozen, deterministic head (e.g. a fixed kernel) gives the same
            # features every epoch: compute them once and train the rest on them
            source.x = self._precomputed(source.x, plan[:frozen], max(batch_size, 256))
            plan = plan[frozen:]
        # a single unshuffled batch (full-batch gradient descent) is staged once, under
        # roles of its own that evaluation never reuses
        resident = (self._stage(source.x, "resident input"), self._stage(source.targets, "resident target"),
                    None if source.weights is None else self._stage(source.weights, "resident weights")) \
            if isinstance(source, ArrayBatches) and steps == 1 and not shuffle and augment is None \
            else None
        for epoch in range(start, epochs):
            hooks.on_epoch_begin(epoch)
            loss_sum, correct, seen = 0.0, 0.0, 0
            top_correct = dict.fromkeys(top_k, 0)
            for step, (x_host, y_host, w_host) in enumerate(source.epoch(epoch)):
                hooks.on_batch_begin(step)
                xb, yb, wb = resident or (self._stage(x_host, "input"), self._stage(y_host, "target"),
                                          None if w_host is None else self._stage(w_host, "weights"))
                stats = backend.to_host(self.train_step(xb, yb, plan, wb))
                if not np.isfinite(stats[0]):
                    raise FloatingPointError(
                        f"the loss became {stats[0]} at epoch {epoch + 1}, batch {step + 1}: lower "
                        "the learning rate or check the inputs' scale")
                loss_sum += float(stats[0]) * xb.shape[0]
                correct += float(stats[1])
                seen += xb.shape[0]
                if top_k:
                    self._count_top_k(top_k, top_correct, y_host)
                hooks.on_batch_end(step, {"loss": loss_sum / seen, "accuracy": correct / seen,
                                          "batch_loss": float(stats[0])})
            logs = {"loss": loss_sum / max(seen, 1), "accuracy": correct / max(seen, 1),
                    **{name: count / max(seen, 1) for name, count in top_correct.items()}}
            if x_val is not None:
                val = self._evaluate_prepared(x_val, y_val, max(batch_size, 256))
                logs.update({f"val_{k}": v for k, v in val.items()})
            self.epoch += 1
            hooks.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        hooks.on_train_end()
        return history

    def _count_top_k(self, top_k: dict, counts: dict, targets) -> None:
        """Add this training batch's top-k hits (from its output) to ``counts``."""
        scores = get_backend().to_host(self._train_output)
        labels = class_indices(np.asarray(targets), scores.shape[1])[0]
        for name, k in top_k.items():
            counts[name] += top_k_correct(labels, scores, k)

    @staticmethod
    def _frozen_prefix(plan) -> int:
        """How many leading plan steps have no trainable weights and no randomness,
        counted only when they include a frozen weighted layer (else 0)."""
        count = 0
        for layer, *_ in plan:
            if isinstance(layer, Dropout) or any(p.trainable for p in layer.params.values()):
                break
            count += 1
        has_frozen_weights = any(layer.params for layer, *_ in plan[:count])
        return count if has_frozen_weights and count < len(plan) else 0

    def _precomputed(self, x, head, batch_size) -> np.ndarray:
        """Host features (N, *shape after head) of host inputs x through the head steps."""
        features = None
        for start in range(0, len(x), batch_size):
            part = slice(start, start + batch_size)
            out = self._run(self._stage(x[part], "input"), head, training=False,
                            keep_for_backward=False)
            host = get_backend().to_host(out)
            if features is None:
                features = np.empty((len(x),) + tuple(host.shape[1:]), dtype=np.float32)
            features[part] = host
        return features

    # ---- inference ----------------------------------------------------------------------
    def _batched_outputs(self, x, batch_size, plan):
        """Yield (slice, probabilities or logits on the backend) over a prepared host array,
        in inference mode; the plan's last layer decides which (a Softmax gives probabilities)."""
        for start in range(0, len(x), batch_size):
            part = slice(start, start + batch_size)
            yield part, self._run(self._stage(x[part], "input"), plan, training=False,
                                  keep_for_backward=False)

    def _probabilities(self, out, plan):
        """What predict returns for a batch run through ``plan``: the network's output,
        softmaxed when the network ends in logits or its final Softmax was folded into the loss."""
        folded = isinstance(self.layers[-1], Softmax) and all(layer is not self.layers[-1]
                                                              for layer, *_ in plan)
        if not (self.outputs_logits or folded):
            return out
        probs = self._workspace("probabilities", out.shape)
        functional.softmax_forward(out, probs)
        return probs

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """The network's output (N, L) float32 on the host: class probabilities for a model
        ending in logits (see :attr:`outputs_logits`: they are softmaxed) or in Softmax;
        any other last layer's output (e.g. Sigmoid) as it is."""
        batch_size = whole_number(batch_size, "batch_size", 1)
        x = self._prepare(x)
        plan = self._plan(training_loss=False)
        result = np.empty((len(x), self.output_shape[0]), dtype=np.float32)
        for part, out in self._batched_outputs(x, batch_size, plan):
            result[part] = get_backend().to_host(self._probabilities(out, plan))
        return result

    def predict_classes(self, x, batch_size: int = 256) -> np.ndarray:
        """Predicted class indices (N,) int64."""
        return self.predict(x, batch_size).argmax(axis=1)

    def evaluate(self, x, y, batch_size: int = 256, verbose: int = 0) -> dict:
        """{"loss": mean loss, "accuracy": share correct[, "roc_auc"]} on the host."""
        self._require_compiled()
        batch_size = whole_number(batch_size, "batch_size", 1)
        x = self._prepare(x)
        result = self._evaluate_prepared(x, self._targets(y, len(x)), batch_size)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
        return result

    def _evaluate_prepared(self, x, y, batch_size):
        backend = get_backend()
        plan = self._plan(training_loss=True)  # logits when the loss fuses the softmax
        loss_sum, correct = 0.0, 0.0
        probabilities = [] if "roc_auc" in self.metrics else None
        top_k = {name: top_k_of(name) for name in self.metrics if top_k_of(name)}
        top_correct = dict.fromkeys(top_k, 0)
        for part, out in self._batched_outputs(x, batch_size, plan):
            stats = backend.to_host(self.loss.compute(out, self._stage(y[part], "target")))
            loss_sum += float(stats[0]) * len(y[part])
            correct += float(stats[1])
            if probabilities is not None:
                probabilities.append(np.array(backend.to_host(self._probabilities(out, plan))))
            if top_k:
                scores = backend.to_host(out)  # ranks of logits are those of probabilities
                labels = class_indices(np.asarray(y[part]), scores.shape[1])[0]
                for name, k in top_k.items():
                    top_correct[name] += top_k_correct(labels, scores, k)
        result = {"loss": loss_sum / len(x), "accuracy": correct / len(x),
                  **{name: count / len(x) for name, count in top_correct.items()}}
        if probabilities is not None:
            labels = y if y.ndim == 1 else y.argmax(axis=1)
            result["roc_auc"] = roc_auc(labels, np.concatenate(probabilities))
        return result

    # ---- weights ---------------------------------------------------------------------------
    def state_dict(self, format: str = "numpy") -> dict:
        """{"conv1.weight": array, ...}: host copies in PyTorch's layouts and names.

        ``format="torch"`` gives torch tensors, so ``net.load_state_dict(model.state_dict(
        format="torch"))`` loads the weights into an ``nn.Module`` with the same names
        and shapes (the zoo's pytorch_cnn matches the PyTorch tutorial's module)."""
        if format not in ("numpy", "torch"):
            raise ValueError(f"state_dict format must be 'numpy' or 'torch', got {format!r}")
        state = {name: param.numpy() for name, param in self.named_parameters()}
        if format == "torch":
            try:
                import torch
            except ImportError:
                raise ImportError("state_dict(format='torch') needs PyTorch: pip install torch") from None
            state = {name: torch.from_numpy(value) for name, value in state.items()}
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Load weights by name; values may be NumPy arrays or torch tensors (a torch
        ``state_dict()``). With ``strict``, missing or unexpected names are an error.
        Shapes must match and values must be finite."""
        params = dict(self.named_parameters())
        state = {key: functional.host_array(value) for key, value in state.items()}
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if strict and (missing or unexpected):
            raise InputError(f"state dict does not match the model: missing {missing}, "
                             f"unexpected {unexpected}")
        for key in set(params) & set(state):
            if tuple(state[key].shape) != params[key].shape:
                raise InputError(f"{key}: the state dict holds shape {tuple(state[key].shape)}, "
                                 f"the model needs {params[key].shape}")
            if not np.isfinite(state[key]).all():
                raise InputError(f"{key}: the state dict holds NaN or infinite values")
        for key in set(params) & set(state):
            params[key].assign(state[key])

    def save_weights(self, path) -> None:
        """The weights alone, by name, in one .npz (atomic); :meth:`load_weights` reads them."""
        from .serialization import save_weights

        save_weights(self, path)

    def load_weights(self, path) -> None:
        """Weights saved by :meth:`save_weights` (or :meth:`save`), checked against this model."""
        from .serialization import load_weights

        load_weights(self, path)

    def get_weights(self) -> list[np.ndarray]:
        return [param.numpy() for param in self.parameters()]

    def set_weights(self, weights) -> None:
        params = self.parameters()
        if len(weights) != len(params):
            raise InputError(f"expected {len(params)} arrays, got {len(weights)}")
        weights = [functional.host_array(value) for value in weights]
        for index, (param, value) in enumerate(zip(params, weights)):
            if value.shape != param.shape:
                raise InputError(f"array {index} has shape {value.shape}, the parameter needs {param.shape}")
        for param, value in zip(params, weights):
            param.assign(value)

    def count_params(self, trainable_only: bool = False) -> int:
        return sum(p.size for p in self.parameters(trainable_only))

    # ---- description ------------------------------------------------------------------------
    def summary(self, print_fn=print) -> str:
        """A table of layers, output shapes and parameter counts; printed and returned."""
        if not self.built:
            raise RuntimeError("summary() needs a built model: pass input_shape=... to Sequential")
        rows = [("Layer (name)", "Output shape", "Params")]
        for layer in self.layers:
            count = sum(p.size for p in layer.params.values())
            frozen = " (frozen)" if layer.params and not layer.trainable else ""
            rows.append((f"{type(layer).__name__} ({layer.name})",
                         str((None,) + tuple(layer.output_shape)), f"{count:,}{frozen}"))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        line = "-" * (sum(widths) + 4)
        text = [f"Model: {self.name}   input (None, {', '.join(map(str, self.input_shape))})", line]
        for i, row in enumerate(rows):
            text.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}")
            if i == 0:
                text.append(line)
        total, trainable = self.count_params(), self.count_params(trainable_only=True)
        text += [line, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                 f"Non-trainable params: {total - trainable:,}", f"Backend: {backend_name()}"]
        out = "\n".join(text)
        if print_fn is not None:
            print_fn(out)
        return out

    def get_config(self) -> dict:
        """The architecture (no weights): ``Sequential.from_config(model.get_config())``
        rebuilds the same layers with the same seed, hence the same initial weights."""
        config = {"name": self.name, "seed": self.seed,
                  "layers": [[type(layer).__name__, layer.get_config()] for layer in self.layers]}
        if self.built:
            config["input_shape"] = list(self.input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        """A new model from :meth:`get_config`'s dict (weights freshly initialised from its seed)."""
        from .layers import from_config as layer_from_config

        if not isinstance(config, dict) or "layers" not in config:
            raise InputError("from_config takes the dict model.get_config() returns")
        layers = [layer_from_config(name, layer_config) for name, layer_config in config["layers"]]
        return cls(layers, seed=config.get("seed"), input_shape=config.get("input_shape"),
                   name=config.get("name", "sequential"))

    def save(self, path) -> None:
        """Architecture, weights, optimizer state and training position in one .npz,
        written atomically; ``fastcnn.load_model(path)`` restores it and fit resumes."""
        from .serialization import save_model

        save_model(self, path)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n])"


