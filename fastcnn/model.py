"""Sequential: a stack of layers with Keras-style compile/fit/evaluate/predict and
PyTorch-style parameters, state dicts, train()/eval() and per-layer forward/backward."""

from __future__ import annotations

import math

import numpy as np

from . import affinity, functional
from . import losses as loss_registry
from . import optim as optim_registry
from . import serialization
from .backend import backend_name, get_backend
from .batches import class_indices
from .callbacks import CallbackList, History, ProgressBar, resolve_verbose
from .errors import CheckpointError, InputError
from .inputs import _host, as_images, whole_number
from .layers import Conv2D, Dense, Layer, layer_class
from .metrics import roc_auc, top_k_correct, top_k_of
from .parameter import Workspace
from .plan import FUSIONS, MODES, Plan, build_plan

LAYER_MODULES = ("fastcnn.zoo.compat",)
"""Modules that define (and so register) more layer classes, imported when a saved model
names a class not registered yet: the core never imports them itself."""


class Sequential(Layer):
    """Layers applied in order; itself a layer, so a Sequential may hold Sequentials.

    ``seed`` fixes the initial weights, dropout masks and shuffling, so a seeded
    run is reproducible on the same backend. ``input_shape`` (per sample, e.g.
    (1, 28, 28)) builds the model at once; otherwise the first batch builds it.
    Unnamed layers are named by position ("0", "1", ...) like torch.nn.Sequential,
    so parameter names read "0.weight", "3.bias", or "conv1.weight" for named layers,
    and "0.2.weight" for a layer of a nested Sequential. A model may end in any layer
    (a feature extractor's output is returned as it is). ``train()`` and ``eval()``
    set the mode ``model(x)`` runs in when ``training`` is not given (eval at first).
    """

    def __init__(self, layers=(), seed: int | None = None, input_shape: tuple | None = None,
                 name: str | None = None):
        layers = list(layers or ())
        if not all(isinstance(layer, Layer) for layer in layers):
            raise TypeError("Sequential takes a list of fastcnn layers, got "
                            f"{[type(layer).__name__ for layer in layers]}")
        self.name = name
        self.trainable = True
        self.params = {}
        self.buffers = {}
        self.workspace = Workspace()
        self.layers: list[Layer] = []
        self.seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        self.rng = np.random.default_rng(self.seed)
        self.loss = None
        self.optimizer = None
        self.schedule = None
        self.metrics: list[str] = []
        self.epoch = 0
        self.data_info: dict | None = None  # what it was trained on (datasets.data_info), saved
        self.stop_training = False
        self.training = False
        self._fusions = FUSIONS
        self._plans: dict = {}
        self._fit_state: dict = {}
        for layer in layers:
            self._append(layer)
        if input_shape is not None:
            self.build(input_shape)

    @property
    def title(self) -> str:
        """The name messages and exported files show: ``name``, or "sequential" (Keras'
        default) for a model built without one (``name`` stays None, so that a model nested
        in another is named by its position, as its layers are)."""
        return self.name if self.name is not None else "sequential"

    def _append(self, layer: Layer) -> None:
        if layer.name is None:
            layer.name = str(len(self.layers))
        if layer.name in {other.name for other in self.layers}:
            raise ValueError(f"layer names must be unique: {layer.name!r} is taken in "
                             f"{[other.name for other in self.layers]}")
        self.layers.append(layer)
        self._plans.clear()

    def add(self, layer: Layer) -> "Sequential":
        """Append ``layer`` (Keras' ``model.add``); a built model builds it at once."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add takes a fastcnn layer, got {type(layer).__name__}")
        output_shape = self.output_shape if self.built else None
        self._append(layer)
        if output_shape is not None:
            try:
                layer.build(output_shape, np.random.default_rng([self.seed, 1, len(self.layers)]))
            except ValueError as exc:
                self.layers.pop()
                raise InputError(f"cannot build layer {layer.name!r}: {exc}") from None
            if self.optimizer is not None:
                self.optimizer.bind(self.parameters())
        return self

    # ---- building ---------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @property
    def input_shape(self) -> tuple | None:
        return self.layers[0].input_shape if self.layers else None

    @property
    def output_shape(self) -> tuple | None:
        return self.layers[-1].output_shape if self.layers else None

    def build(self, input_shape, rng: np.random.Generator | None = None) -> tuple:
        """Create every layer's weights for per-sample inputs of ``input_shape``; returns the
        per-sample output shape. A nested Sequential draws from its parent's ``rng``."""
        if not self.layers:
            raise InputError("the Sequential has no layers: add some with model.add(...)")
        shape = tuple(int(s) for s in input_shape)
        init_rng = rng if rng is not None else np.random.default_rng([self.seed, 1])
        for layer in self.layers:
            try:
                shape = layer.build(shape, init_rng)
            except ValueError as exc:
                raise InputError(f"cannot build layer {layer.name!r}: {exc}") from None
        self._plans.clear()
        return shape

    def named_layers(self) -> list[tuple[str, Layer]]:
        """[(dotted name, layer)] of the leaf layers in run order, nested Sequentials flattened."""
        found = []
        for layer in self.layers:
            if isinstance(layer, Sequential):
                found += [(f"{layer.name}.{name}", leaf) for name, leaf in layer.named_layers()]
            else:
                found.append((layer.name, layer))
        return found

    # ---- modes and plans --------------------------------------------------------------
    def train(self, mode: bool = True) -> "Sequential":
        """Run ``model(x)`` / ``forward(x)`` in training mode (dropout, batch statistics)."""
        self.training = bool(mode)
        for layer in self.layers:
            if isinstance(layer, Sequential):
                layer.train(mode)
        return self

    def eval(self) -> "Sequential":
        """Run ``model(x)`` / ``forward(x)`` in inference mode (the default)."""
        return self.train(False)

    @property
    def fusions(self) -> tuple:
        """The kinds of fusion the plans make (plan.FUSIONS: "activation", "pool")."""
        return self._fusions

    @fusions.setter
    def fusions(self, kinds) -> None:
        unknown = set(kinds) - set(FUSIONS)
        if unknown:
            raise ValueError(f"unknown fusions {sorted(unknown)}; choose from {FUSIONS}")
        self._fusions = tuple(kinds)
        self._plans.clear()

    def plan(self, mode: str = "forward") -> Plan:
        """The plan for ``mode`` (plan.MODES: "train", "evaluate", "forward", "predict"),
        built once and kept until the layers, the loss or the fusions change."""
        leaves = [layer for _, layer in self.named_layers()]
        key = (mode, tuple(map(id, leaves)), getattr(self.loss, "folds_layer", None))
        cached = self._plans.get(mode)
        if cached is None or cached[0] != key:
            if mode not in MODES:
                raise ValueError(f"unknown plan mode {mode!r}; choose from {', '.join(MODES)}")
            cached = self._plans[mode] = (key, build_plan(leaves, MODES[mode], self.loss,
                                                          self._fusions))
        return cached[1]

    @property
    def outputs_logits(self) -> bool:
        """True when the network ends in class scores: (N, L) outputs whose last weighted
        layer is a Conv2D or Dense without activation, followed only by layers that keep
        the scores (Flatten, Dropout). ``predict`` softmaxes exactly these when the model
        is not compiled or is compiled with a loss that takes logits (cross-entropy); any
        other network's output (a feature extractor's, a Sigmoid's) is returned as it is."""
        if self.output_shape is None or len(self.output_shape) != 1 or \
                (self.loss is not None and getattr(self.loss, "folds_layer", None) != "Softmax"):
            return False
        for _, layer in reversed(self.named_layers()):
            if layer.preserves_scores:
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
        return [(f"{name}.{key}", param) for name, layer in self.named_layers()
                for key, param in layer.params.items() if param.trainable or not trainable_only]

    def freeze(self) -> "Sequential":
        for layer in self.layers:
            layer.freeze()
        self.trainable = False
        return self

    def unfreeze(self) -> "Sequential":
        for layer in self.layers:
            layer.unfreeze()
        self.trainable = True
        return self

    def _prepare(self, x):
        """Build from x if needed, move weights to the active backend, check x; returns host float32."""
        x = as_images(x, self.input_shape)
        if not self.built:
            self.build(x.shape[1:])
        for _, layer in self.named_layers():
            for param in list(layer.params.values()) + list(layer.buffers.values()):
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
        return self.workspace.get(role, shape, dtype)

    def forward(self, x, training: bool | None = None):
        """x: host array or torch tensor (converted as in :mod:`fastcnn.inputs`) or backend
        array (N, *input_shape) -> network output (N, *output_shape) on the backend: logits,
        probabilities when the last layer is Softmax, features for a feature extractor.
        ``training`` None runs in the model's mode (``train()``/``eval()``). The result is a
        reused buffer."""
        training = self.training if training is None else bool(training)
        if functional.is_host_array(x) or not self.built:
            x = self._stage(self._prepare(x))
        else:
            x = functional.to_backend(x, "x")
            self.check_input(x)
        return self._run(x, self.plan("forward"), training)

    def _run(self, x, plan: Plan, training: bool):
        """x through the steps of ``plan``; remembered for :meth:`backward`."""
        for step in plan.steps:
            x = step.forward(x, training)
        self._last_plan = plan
        self._last_output_shape = tuple(x.shape)
        return x

    def backward(self, dout, need_input_grad: bool = False):
        """Back-propagate d(loss)/d(output) (N, *output_shape) through the steps of the last
        forward call, adding each trainable parameter's gradient to its ``grad`` (PyTorch:
        gradients add up over backward() calls until zero_grad()). dout may be a backend
        array, a NumPy array of any float dtype or a torch tensor. Returns the input's
        gradient when ``need_input_grad`` (a nested Sequential), else None."""
        plan = getattr(self, "_last_plan", None)
        if plan is None:
            raise RuntimeError("call forward() before backward()")
        given = _host(dout) if functional.is_host_array(dout) else None
        dout = functional.to_backend(dout, "dout (the gradient of the last forward output)",
                                     shape=self._last_output_shape)
        if given is not None and isinstance(dout, np.ndarray) and np.shares_memory(given, dout):
            dout = dout.copy()  # the backward kernels may overwrite dout: never the caller's array
        params = self.parameters(trainable_only=True)
        for param in params:
            param.begin_accumulation()
        try:
            first = 0 if need_input_grad else plan.first_trainable()
            for i in range(len(plan) - 1, first - 1, -1):
                dout = plan.steps[i].backward(dout, need_input_grad=need_input_grad or i > first)
        finally:
            for param in params:
                param.end_accumulation()
        return dout if need_input_grad else None

    def zero_grad(self) -> None:
        """Forget every gradient (the next backward pass starts the sums afresh)."""
        for param in self.parameters():
            param.zero_grad()

    def __call__(self, x, training: bool | None = None):
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
        self._plans.clear()
        return self

    def _require_compiled(self):
        if self.loss is None:
            raise RuntimeError("call model.compile(optimizer, loss) before fit/evaluate")

    def train_step(self, x, y, plan: Plan | None = None, weights=None):
        """One optimisation step on a staged batch: x, y (and per-sample weights (N,) or
        None) backend arrays. Returns the loss stats (2,) [mean loss, correct] on the
        backend (no host sync)."""
        self.zero_grad()  # no fill: the backward kernels overwrite a zeroed gradient
        logits = self._run(x, plan or self.plan("train"), training=True)
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
        self._adopt_schedule(callback_list)
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
        plan = self.plan("train")
        frozen = self._frozen_prefix(plan) if isinstance(source, ArrayBatches) and \
            augment is None else 0
        hooks.on_train_begin()
        if frozen and start < epochs:
            # the frozen, deterministic head (e.g. a fixed kernel) gives the same
            # features every epoch: compute them once and train the rest on them
            source.x = self._precomputed(source.x, self.plan("evaluate").steps[:frozen],
                                         max(batch_size, 256))
            plan = Plan(plan.steps[frozen:], plan.folded, plan.mode)
        # a single unshuffled batch (full-batch gradient descent) is staged once, under
        # roles of its own that evaluation never reuses
        resident = (self._stage(source.x, "resident input"), self._stage(source.targets, "resident target"),
                    None if source.weights is None else self._stage(source.weights, "resident weights")) \
            if isinstance(source, ArrayBatches) and steps == 1 and not shuffle and augment is None \
            else None
        with affinity.pinned(backend):  # beside a niced process: see fastcnn.affinity
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
    def _frozen_prefix(plan: Plan) -> int:
        """How many leading plan steps have no trainable weights and compute the same in
        training as in inference, counted only when they include a frozen weighted layer
        (else 0)."""
        count = 0
        for step in plan.steps:
            if any(layer.training_differs or any(p.trainable for p in layer.params.values())
                   for layer in step.layers):
                break
            count += 1
        has_frozen_weights = any(layer.params for step in plan.steps[:count] for layer in step.layers)
        return count if has_frozen_weights and count < len(plan) else 0

    def _precomputed(self, x, head, batch_size) -> np.ndarray:
        """Host features (N, *shape after head) of host inputs x through the head steps."""
        features = None
        head = Plan(list(head), None, MODES["evaluate"])
        for start in range(0, len(x), batch_size):
            part = slice(start, start + batch_size)
            out = self._run(self._stage(x[part], "input"), head, training=False)
            host = get_backend().to_host(out)
            if features is None:
                features = np.empty((len(x),) + tuple(host.shape[1:]), dtype=np.float32)
            features[part] = host
        return features

    # ---- inference ----------------------------------------------------------------------
    def _batched_outputs(self, x, batch_size, plan):
        """Yield (slice, the plan's output on the backend) over a prepared host array, in
        inference mode."""
        for start in range(0, len(x), batch_size):
            part = slice(start, start + batch_size)
            yield part, self._run(self._stage(x[part], "input"), plan, training=False)

    def _probabilities(self, out, plan):
        """What predict returns for a batch run through ``plan``: the network's output,
        softmaxed when the network ends in logits or its final Softmax was folded into the loss
        (each output through a sigmoid when the loss is binary cross-entropy from logits)."""
        if not (self.outputs_logits or plan.folded is not None):
            return out
        probs = self._workspace("probabilities", out.shape)
        if getattr(self.loss, "from_logits", False):
            functional.sigmoid_forward(out, probs)
        else:
            functional.softmax_forward(out, probs)
        return probs

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """The network's output (N, *output_shape) float32 on the host: class probabilities
        for a classifier ending in logits (see :attr:`outputs_logits`: they are softmaxed)
        or in Softmax; any other network's output (a Sigmoid's, a feature extractor's) as it is."""
        batch_size = whole_number(batch_size, "batch_size", 1)
        x = self._prepare(x)
        plan = self.plan("predict")
        result = np.empty((len(x),) + tuple(self.output_shape), dtype=np.float32)
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
        plan = self.plan("evaluate")  # logits when the loss folds the softmax in
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

    # ---- weights and state ---------------------------------------------------------------
    def _state_arrays(self) -> dict:
        """{"<layer>.<key>": host array} of every layer's array state (running statistics)."""
        return {f"{name}.{key}": value for name, layer in self.named_layers()
                for key, value in layer.state_arrays().items()}

    def state_dict(self, format: str = "numpy") -> dict:
        """{"conv1.weight": array, "bn.running_mean": array, ...}: host copies of the
        parameters and of every layer's array state, in PyTorch's layouts and names.

        ``format="torch"`` gives torch tensors, so ``net.load_state_dict(model.state_dict(
        format="torch"))`` loads the weights into an ``nn.Module`` with the same names
        and shapes (the zoo's pytorch_cnn matches the PyTorch tutorial's module)."""
        if format not in ("numpy", "torch"):
            raise ValueError(f"state_dict format must be 'numpy' or 'torch', got {format!r}")
        if not self.built:
            raise RuntimeError("the model is not built yet: pass input_shape=... or call build()")
        state = {}
        for name, layer in self.named_layers():  # each layer's weights, then its state: torch's order
            state.update({f"{name}.{key}": param.numpy() for key, param in layer.params.items()})
            state.update({f"{name}.{key}": np.array(value, copy=True)
                          for key, value in layer.state_arrays().items()})
        if format == "torch":
            try:
                import torch
            except ImportError:
                raise ImportError("state_dict(format='torch') needs PyTorch: pip install torch") from None
            state = {name: torch.from_numpy(value) for name, value in state.items()}
        return state

    def _expected_arrays(self) -> dict:
        """{name: (shape, dtype)} of every array state_dict() holds."""
        expected = {name: (param.shape, np.dtype(np.float32)) for name, param in self.named_parameters()}
        expected.update({name: (value.shape, value.dtype)
                         for name, value in self._state_arrays().items()})
        return expected

    def _assign(self, arrays: dict) -> None:
        """Put checked host arrays (a subset of :meth:`_expected_arrays`) into the parameters
        and the layers' states."""
        params = dict(self.named_parameters())
        for name, value in arrays.items():
            if name in params:
                params[name].assign(value)
        for lname, layer in self.named_layers():
            prefix = f"{lname}."
            update = {name[len(prefix):]: value for name, value in arrays.items()
                      if name.startswith(prefix) and name not in params}
            if update:
                layer.set_state({**layer.get_state(), **update})

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Load weights and layer state (running statistics) by name; values may be NumPy
        arrays or torch tensors (a torch ``state_dict()``). With ``strict``, missing or
        unexpected names are an error. Shapes must match and values must be finite."""
        expected = self._expected_arrays()
        state = {key: functional.host_array(value, expected[key][1] if key in expected else np.float32)
                 for key, value in state.items()}
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if strict and (missing or unexpected):
            raise InputError(f"state dict does not match the model: missing {missing}, "
                             f"unexpected {unexpected}")
        for key in set(expected) & set(state):
            if tuple(state[key].shape) != tuple(expected[key][0]):
                raise InputError(f"{key}: the state dict holds shape {tuple(state[key].shape)}, "
                                 f"the model needs {tuple(expected[key][0])}")
            if not np.isfinite(state[key]).all():
                raise InputError(f"{key}: the state dict holds NaN or infinite values")
        self._assign({key: state[key] for key in set(expected) & set(state)})

    def save_weights(self, path) -> None:
        """The weights (and layer state) alone, by name, in one .npz (atomic);
        :meth:`load_weights` reads them."""
        if not self.built:
            raise RuntimeError("cannot save the weights of a model that is not built")
        serialization.write(path, {f"param/{name}": value for name, value in self.state_dict().items()})

    def load_weights(self, path) -> None:
        """Weights saved by :meth:`save_weights` (or :meth:`save`), checked against this model
        (names, shape, dtype, finiteness); nothing changes on error."""
        arrays, _ = serialization.read(path, "weights file")
        self._assign(self._checked_weights(path, arrays))

    def _checked_weights(self, path, arrays: dict) -> dict:
        """The ``param/`` arrays of a file, every one checked against this model."""
        expected = self._expected_arrays()
        saved = {key[len("param/"):]: value for key, value in arrays.items() if key.startswith("param/")}
        saved.update({key[len("state/"):]: value for key, value in arrays.items()
                      if key.startswith("state/")})  # layer state in files of the first format
        missing, unexpected = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
        if missing or unexpected:
            layers = [name for name in missing if name not in dict(self.named_parameters())]
            hint = (f" ({', '.join(layers)}: layer state such as batch-norm running statistics, "
                    "which a checkpoint must hold)") if layers else ""
            raise CheckpointError(f"{path}: the arrays do not match the model: missing "
                                  f"{missing}{hint}, unexpected {unexpected}")
        return {name: serialization.checked_array(path, f"param/{name}", value, *expected[name])
                for name, value in saved.items()}

    def export_onnx(self, path, probabilities: bool = False):
        """Write the model as an ONNX file (atomically) that ONNX Runtime runs: input ``input``
        (batch, *input_shape) float32, output ``output`` (batch, *output_shape), the batch
        axis dynamic, one node per layer named like it. The output is :meth:`forward`'s
        (logits for a model ending in them); ``probabilities=True`` gives :meth:`predict`'s.
        Needs the ``onnx`` package (``pip install 'fastcnn[onnx]'``); a layer with no ONNX
        form is an ExportError naming it. Returns the path."""
        from .export import export_onnx

        return export_onnx(self, path, probabilities=probabilities)

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
            params = layer.parameters()
            count = sum(p.size for p in params)
            frozen = " (frozen)" if params and not any(p.trainable for p in params) else ""
            rows.append((f"{type(layer).__name__} ({layer.name})",
                         str((None,) + tuple(layer.output_shape)), f"{count:,}{frozen}"))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        line = "-" * (sum(widths) + 4)
        text = [f"Model: {self.name or 'sequential'}   input (None, "
                f"{', '.join(map(str, self.input_shape))})", line]
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
        """A new model from :meth:`get_config`'s dict (weights freshly initialised from its seed).
        Layer classes are found by name in the registry (``fastcnn.layers.REGISTRY``)."""
        if not isinstance(config, dict) or "layers" not in config:
            raise InputError("from_config takes the dict model.get_config() returns")
        layers = [_registered(name).from_config(layer_config)
                  for name, layer_config in config["layers"]]
        return cls(layers, seed=config.get("seed"), input_shape=config.get("input_shape"),
                   name=config.get("name"))

    def save(self, path) -> None:
        """Architecture, weights, layer state, optimizer state and training position in one
        .npz, written atomically; ``fastcnn.load_model(path)`` restores it and fit resumes."""
        if not self.built:
            raise RuntimeError("cannot save a model that is not built: train it or pass input_shape=...")
        scalars = {name: {k: v for k, v in layer.get_state().items() if not isinstance(v, np.ndarray)}
                   for name, layer in self.named_layers()}
        meta = {"model": self.get_config(), "input_shape": list(self.input_shape),
                "epoch": self.epoch, "rng_state": self.rng.bit_generator.state,
                "state": {name: values for name, values in scalars.items() if values},
                "loss": self.loss.get_config() if self.loss is not None else None,
                "metrics": self.metrics, "optimizer": None, "data": self.data_info}
        arrays = {f"param/{name}": value for name, value in self.state_dict().items()}
        if self.optimizer is not None:
            meta["optimizer"] = {**self.optimizer.get_config(), "iterations": self.optimizer.iterations}
            if self.schedule is not None:
                meta["schedule"] = self._schedule_meta(meta["optimizer"])
            for name, param in self.named_parameters():
                backend = param._module()
                for slot, value in param.state.items():
                    arrays[f"optim/{name}/{slot}"] = np.asarray(backend.to_host(value))
        serialization.write(path, arrays, meta)

    def _adopt_schedule(self, callbacks: list) -> None:
        """A schedule passed to fit as a callback is the model's schedule, as one passed to
        compile: saved with the model and continued by a resumed fit."""
        from .schedules import LRScheduler

        given = [callback for callback in callbacks if isinstance(callback, LRScheduler)]
        others = [schedule for schedule in given if schedule is not self.schedule]
        if len(given) > 1 or (others and self.schedule is not None):
            raise InputError("fit got two learning-rate schedules (compile(schedule=...) and the "
                             "callbacks hold one each at most): pass one, to compile or to fit")
        if others:
            self.schedule = others[0]

    def _schedule_meta(self, optimizer_meta: dict) -> dict:
        """The schedule's config and, once fit has bound it to this optimizer, its state
        (PyTorch's state_dict names). A bound schedule owns the optimizer's rate, so the
        optimizer is saved with the schedule's base rate (a finished cosine's rate may be 0,
        which no optimizer takes) and load_state_dict sets the rate of the step it was at."""
        schedule = self.schedule
        if schedule.optimizer is not self.optimizer:
            return {"config": schedule.get_config(), "state": None}
        optimizer_meta["lr"] = schedule.base_lr
        return {"config": schedule.get_config(), "state": schedule.state_dict()}

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer).replace("\n", "\n  ") for layer in self.layers)
        return f"Sequential([\n  {inner}\n])"


def _registered(name: str) -> type:
    """The layer class registered as ``name``, importing LAYER_MODULES once on a miss."""
    try:
        return layer_class(name)
    except ValueError:
        import importlib

        for module in LAYER_MODULES:
            importlib.import_module(module)
        return layer_class(name)


def load_model(path) -> Sequential:
    """Rebuild a model saved with ``model.save(path)``: same layers, weights, layer state,
    optimizer state and epoch counter, ready to predict or to resume
    ``fit(initial_epoch=model.epoch)``.

    Every array read (weights, running statistics, optimizer slots) is checked for shape,
    dtype and finiteness against the model, and the RNG and layer states for type, before
    any kernel sees them; a mismatch or a missing array is a CheckpointError naming it and
    the file.
    """
    arrays, meta = serialization.read(path, "model")
    try:
        config = meta["model"]
        model = Sequential.from_config({**config, "input_shape": meta["input_shape"]})
        model._assign(model._checked_weights(path, arrays))
        model.epoch = serialization.whole_number(path, "the epoch counter", meta["epoch"])
        _restore_rng(path, model, meta["rng_state"])
        scalars = meta.get("state", meta.get("dropout", {}))  # "dropout": the first files
        for name, layer in model.named_layers():
            if scalars.get(name):
                try:
                    layer.set_state({**layer.get_state(), **scalars[name]})
                except (InputError, TypeError, ValueError) as exc:
                    raise CheckpointError(f"{path}: the state of layer {name!r} is invalid: {exc}") from None
        model.data_info = _data_info(path, meta.get("data"))
        if meta["loss"] is not None:
            _restore_optimizer(path, model, meta, arrays)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, InputError) as exc:
        raise CheckpointError(f"{path} does not describe a valid model: {exc}") from None
    return model


def _data_info(path, info) -> dict | None:
    """The saved ``model.data_info``: None, or a dict naming its dataset."""
    if info is not None and not (isinstance(info, dict) and isinstance(info.get("dataset"), str)):
        raise CheckpointError(f"{path}: the training data description ('data') is {info!r}, not a "
                              "dict naming its dataset; the file is damaged")
    return info


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
        iterations = serialization.whole_number(path, "the optimizer's iteration count",
                                                opt_config.pop("iterations"))
        try:
            optimizer = optim_registry.get(opt_config)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: the saved optimizer {opt_config} is invalid: {exc}") from None
        optimizer.iterations = iterations
    try:
        model.compile(optimizer or "adam", meta["loss"], metrics=meta["metrics"] or ["accuracy"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: the saved loss or metrics are invalid: {exc}") from None
    if optimizer is not None and meta.get("schedule") is not None:
        model.schedule = _restored_schedule(path, meta["schedule"], optimizer)
    params = dict(model.named_parameters())
    for key, value in arrays.items():
        if not key.startswith("optim/"):
            continue
        name, _, slot = key[len("optim/"):].rpartition("/")
        if name not in params:
            raise CheckpointError(f"{path}: optimizer state {key!r} is for unknown parameter {name!r}")
        if slot not in model.optimizer.slots:
            raise CheckpointError(f"{path}: optimizer state {key!r}: {model.optimizer.name} has no "
                                  f"slot {slot!r} (its slots: {', '.join(model.optimizer.slots)})")
        checked = serialization.checked_array(path, key, value, params[name].shape)
        params[name].state[slot] = get_backend().to_device(checked)


def _restored_schedule(path, saved, optimizer):
    """The saved learning-rate schedule, bound to the restored ``optimizer`` at the step it
    was saved at (or unbound, as saved before its first fit); CheckpointError naming the
    field that is wrong."""
    from .schedules import from_config

    if not isinstance(saved, dict) or "config" not in saved:
        raise CheckpointError(f"{path}: the learning-rate schedule ('schedule') is {saved!r}, not "
                              "a dict with its config; the file is damaged: re-save it, or load "
                              "an older copy")
    try:
        schedule = from_config(saved["config"])
    except InputError as exc:
        raise CheckpointError(f"{path}: the learning-rate schedule's config ('schedule.config') "
                              f"is invalid: {exc}; the file is damaged: re-save it, or load an "
                              "older copy") from None
    if saved.get("state") is not None:
        try:
            schedule.bind(optimizer)
            schedule.load_state_dict(saved["state"])
        except InputError as exc:
            raise CheckpointError(f"{path}: the learning-rate schedule's state ('schedule.state') "
                                  f"does not fit its config {saved['config']}: {exc}; the file is "
                                  "damaged: re-save it, or load an older copy") from None
    return schedule
