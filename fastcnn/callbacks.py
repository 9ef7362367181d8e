"""Callbacks: hooks into fit at train/epoch/batch boundaries.

Subclass :class:`Callback` and override any of its ``on_*`` methods; ``self.model``
is the model being trained. Set ``self.model.stop_training = True`` to stop
after the current epoch. A callback that adds keys to the epoch logs lists them
in ``adds_logs``, so that callbacks monitoring them are checked before training.
"""

from __future__ import annotations

import inspect
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import metrics as metric_functions
from .backend import compile_seconds
from .errors import InputError


def resolve_verbose(verbose) -> int:
    """0, 1 or 2 from fit's ``verbose``; "auto" is a progress bar (1) on a terminal or in a
    notebook and one line per epoch (2) when output is redirected to a file or pipe."""
    if verbose == "auto":
        interactive = all(getattr(stream, "isatty", lambda: False)() for stream in (sys.stdout, sys.stderr))
        return 1 if interactive or "ipykernel" in sys.modules else 2
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise InputError(f"verbose must be 0 (silent), 1 (progress bar), 2 (one line per epoch) "
                         f"or 'auto', got {verbose!r}")
    return int(verbose)


class Callback:
    model = None
    adds_logs: tuple = ()

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch: int, logs=None): ...
    def on_epoch_end(self, epoch: int, logs=None): ...
    def on_batch_begin(self, batch: int, logs=None): ...
    def on_batch_end(self, batch: int, logs=None): ...


class CallbackList:
    """Calls the same hook on every callback in order."""

    def __init__(self, callbacks, model):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_model(model)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args, **kwargs):
            for callback in self.callbacks:
                getattr(callback, hook)(*args, **kwargs)
        return call


class History(Callback):
    """Per-epoch logs: ``history.history["val_loss"]`` is a list over epochs."""

    def __init__(self):
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def _improvement(monitor: str, mode: str):
    """A function (current, best) -> bool for 'current is better than best'."""
    if mode == "auto":
        mode = "max" if ("acc" in monitor or "auc" in monitor) else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    return (lambda current, best: current < best) if mode == "min" else (lambda current, best: current > best), mode


def _monitored(logs, monitor):
    if monitor not in (logs or {}):
        raise KeyError(f"cannot monitor {monitor!r}: this epoch logged only {sorted(logs or {})}; "
                       "pass validation data to monitor val_* values")
    return logs[monitor]


def _check_monitored(callback, monitor: str) -> None:
    """At on_train_begin: InputError unless this fit will log ``monitor``, saying what to pass."""
    logged = callback.model._fit_state.get("logged", [])
    if monitor in logged:
        return
    advice = ("pass validation_data=(x_val, y_val) or validation_split=0.1 to fit"
              if monitor.startswith("val_") else f"monitor one of {', '.join(logged)}")
    raise InputError(f"{type(callback).__name__} monitors {monitor!r}, which this fit does not log "
                     f"(it logs {', '.join(logged)}): {advice}")


class ModelCheckpoint(Callback):
    """Save the model (architecture, weights, optimizer state) at the end of epochs.

    ``path`` may contain ``{epoch}`` and log keys, e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``.
    With ``save_best_only`` only an epoch that improves ``monitor`` is saved.
    Writes are atomic.
    """

    def __init__(self, path, monitor: str = "val_loss", mode: str = "auto",
                 save_best_only: bool = False, verbose: int = 0):
        self.path = str(path)
        self.monitor = monitor
        self.better, self.mode = _improvement(monitor, mode)
        self.save_best_only = save_best_only
        self.verbose = verbose
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None

    def on_train_begin(self, logs=None):
        from .fileio import check_writable

        logged = self.model._fit_state.get("logged", [])
        if self.save_best_only:
            _check_monitored(self, self.monitor)
        try:
            example = Path(self.path.format(epoch=1, **{key: 0.0 for key in logged}))
        except KeyError as exc:
            advice = ("pass validation_data=(x_val, y_val) or validation_split=0.1 to fit"
                      if str(exc.args[0]).startswith("val_") else "use {epoch} or a logged key")
            raise InputError(f"ModelCheckpoint path {self.path!r} uses {{{exc.args[0]}}}, which this "
                             f"fit does not log (it logs {', '.join(logged)}): {advice}") from None
        except (IndexError, ValueError) as exc:
            raise InputError(f"ModelCheckpoint path {self.path!r} is not a valid format string: "
                             f"{exc}") from None
        check_writable(example)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = Path(self.path.format(epoch=epoch + 1, **logs))
        if self.save_best_only:
            current = _monitored(logs, self.monitor)
            if not self.better(current, self.best):
                return
            if self.verbose:
                print(f"epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving {path}")
            self.best, self.best_epoch = current, epoch + 1
        self.model.save(path)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs;
    optionally put back the weights of the best epoch."""

    def __init__(self, monitor: str = "val_loss", patience: int = 0, mode: str = "auto",
                 min_delta: float = 0.0, restore_best_weights: bool = False, verbose: int = 0):
        self.monitor = monitor
        self.patience = int(patience)
        self.better, self.mode = _improvement(monitor, mode)
        self.min_delta = abs(float(min_delta))
        self.restore_best_weights = restore_best_weights
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        _check_monitored(self, self.monitor)
        self.wait = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights = None
        self.best_epoch = None
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(logs, self.monitor)
        shifted = current + self.min_delta if self.mode == "min" else current - self.min_delta
        if self.better(shifted, self.best):
            self.best, self.best_epoch, self.wait = current, epoch + 1, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            if self.verbose:
                print(f"restored the weights of epoch {self.best_epoch} "
                      f"({self.monitor} = {self.best:.5f})")
        if self.stopped_epoch and self.verbose:
            print(f"early stopping at epoch {self.stopped_epoch}")


class RocAuc(Callback):
    """Adds ``val_roc_auc`` (one-vs-rest, macro) to each epoch's logs and prints it,
    as the KMNIST tutorial does. x_val, y_val are host arrays."""

    adds_logs = ("val_roc_auc",)

    def __init__(self, x_val, y_val, verbose: int = 1, batch_size: int = 512):
        self.x_val, self.y_val = x_val, np.asarray(y_val)
        self.verbose, self.batch_size = verbose, batch_size

    def on_epoch_end(self, epoch, logs=None):
        labels = self.y_val.argmax(axis=1) if self.y_val.ndim == 2 else self.y_val
        score = metric_functions.roc_auc(labels, self.model.predict(self.x_val, self.batch_size))
        if logs is not None:
            logs["val_roc_auc"] = score
        if self.verbose:
            print(f"epoch {epoch + 1}: val ROC AUC {score:.5f}")


class ProgressBar(Callback):
    """A tqdm bar per epoch showing running loss and accuracy (fit(verbose=1)), then the
    epoch's summary (every logged value and the epoch's time) on a line of its own, which
    a narrow terminal wraps instead of cutting; verbose=2 prints only the summary lines.
    The bar's rate and ETA leave out the time spent compiling kernels (a first-ever numba
    run: about a minute in the first step)."""

    def __init__(self, verbose: int = 1):
        self.verbose = verbose
        self.bar = None
        self.started = None

    def on_train_begin(self, logs=None):
        self.epochs = self.model._fit_state["epochs"]
        self.steps = self.model._fit_state["steps"]

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.compiled = time.perf_counter(), compile_seconds()
        self.compiled_before = self.compiled
        if self.verbose == 1:
            from tqdm.auto import tqdm

            # smoothing 0: the rate is the epoch's mean, from a clock that skips compiles
            self.bar = tqdm(total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}",
                            unit="batch", leave=True, dynamic_ncols=True, smoothing=0)

    def on_batch_end(self, batch, logs=None):
        if self.bar is not None and logs:
            compiled = compile_seconds()
            self.bar.start_t += compiled - self.compiled
            self.compiled = compiled
            self.bar.update(1)
            if batch % 10 == 0 or batch == self.steps - 1:
                self.bar.set_postfix(loss=f"{logs['loss']:.4f}", acc=f"{logs['accuracy']:.4f}",
                                     refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        print(epoch_summary(epoch, self.epochs, logs, time.perf_counter() - self.started,
                            compile_seconds() - self.compiled_before), flush=True)


def epoch_summary(epoch: int, epochs: int, logs, seconds: float, compiling: float = 0.0) -> str:
    """'epoch 2/5 - loss: 0.1234 - accuracy: 0.9612 - val_loss: ... - 12.3 s', and
    '(52.0 s of it compiling kernels)' after a compile of half a second or more."""
    values = "".join(f" - {key}: {value:.4f}" for key, value in (logs or {}).items()
                     if isinstance(value, (int, float)))
    compiled = f" ({compiling:.1f} s of it compiling kernels)" if compiling >= 0.5 else ""
    return f"epoch {epoch + 1}/{epochs}{values} - {seconds:.1f} s{compiled}"


def _optimizer(callback):
    optimizer = callback.model.optimizer
    if optimizer is None:
        raise RuntimeError(f"{type(callback).__name__} needs a compiled model (an optimizer)")
    return optimizer


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)`` (Keras;
    ``schedule(epoch)`` works too). ``epoch`` counts from 0 and is absolute when resuming.
    The rate used is logged as ``learning_rate``."""

    adds_logs = ("learning_rate",)

    def __init__(self, schedule, verbose: int = 0):
        if not callable(schedule):
            raise TypeError(f"schedule must be a function (epoch, lr) -> lr, got {schedule!r}")
        self.schedule, self.verbose = schedule, verbose
        try:
            parameters = inspect.signature(schedule).parameters.values()
            self.takes_lr = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                                for p in parameters) >= 2
        except (TypeError, ValueError):  # a builtin without a signature: Keras' form
            self.takes_lr = True

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = _optimizer(self)
        rate = self.schedule(epoch, optimizer.learning_rate) if self.takes_lr else self.schedule(epoch)
        try:
            optimizer.learning_rate = rate
        except ValueError as exc:
            raise InputError(f"the schedule gave {rate!r} for epoch {epoch + 1}: {exc}") from None
        if self.verbose:
            print(f"epoch {epoch + 1}: learning rate {optimizer.learning_rate:g}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _optimizer(self).learning_rate


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved by
    ``min_delta`` for ``patience`` epochs (Keras' defaults), never below ``min_lr``;
    ``cooldown`` epochs pass after a reduction before counting again."""

    adds_logs = ("learning_rate",)

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0, verbose: int = 0):
        if not 0.0 < float(factor) < 1.0:
            raise ValueError(f"ReduceLROnPlateau factor must be in (0, 1), got {factor}")
        self.monitor, self.factor = monitor, float(factor)
        self.patience, self.cooldown = int(patience), int(cooldown)
        self.better, self.mode = _improvement(monitor, mode)
        self.min_delta, self.min_lr, self.verbose = abs(float(min_delta)), float(min_lr), verbose

    def on_train_begin(self, logs=None):
        _check_monitored(self, self.monitor)
        self.wait, self.cooldown_left = 0, 0
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        optimizer = _optimizer(self)
        current = _monitored(logs, self.monitor)
        shifted = current + self.min_delta if self.mode == "min" else current - self.min_delta
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self.better(shifted, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_left == 0:
            self.wait += 1
            if self.wait >= self.patience and optimizer.learning_rate > self.min_lr:
                rate = max(optimizer.learning_rate * self.factor, self.min_lr)
                optimizer.learning_rate = rate
                self.cooldown_left, self.wait = self.cooldown, 0
                if self.verbose:
                    print(f"epoch {epoch + 1}: {self.monitor} has not improved; "
                          f"learning rate reduced to {rate:g}")
        if logs is not None:
            logs["learning_rate"] = optimizer.learning_rate


class CSVLogger(Callback):
    """Keras' CSVLogger: one row per epoch (``epoch`` from 0, then every log key in sorted
    order) written to ``filename``. The whole file is rewritten atomically each epoch, so
    a crash leaves the rows of the finished epochs. ``append`` keeps an existing file's
    rows (their columns must be this fit's)."""

    def __init__(self, filename, separator: str = ",", append: bool = False):
        if not isinstance(separator, str) or len(separator) != 1:
            raise InputError(f"separator must be one character, got {separator!r}")
        self.filename, self.separator, self.append = Path(filename), separator, bool(append)

    def on_train_begin(self, logs=None):
        from .fileio import check_writable

        check_writable(self.filename)
        self.lines = []
        if self.append and self.filename.exists():
            self.lines = self.filename.read_text().splitlines()
        self.header = self.lines[0].split(self.separator) if self.lines else None

    def on_epoch_end(self, epoch, logs=None):
        from .fileio import atomic_write

        logs = {key: value for key, value in (logs or {}).items()
                if isinstance(value, (int, float, np.floating, np.integer))}
        columns = ["epoch"] + sorted(logs)
        if self.header is None:
            self.header = columns
            self.lines = [self.separator.join(columns)]
        elif self.header != columns:
            raise InputError(f"CSVLogger(append=True): {self.filename} has the columns "
                             f"{self.header}, this fit logs {columns}: write to another file")
        self.lines.append(self.separator.join([str(epoch)] + [repr(float(logs[key]))
                                                               for key in columns[1:]]))
        with atomic_write(self.filename, "w") as handle:
            handle.write("\n".join(self.lines) + "\n")


class TensorBoard(Callback):
    """Keras' TensorBoard callback, for the scalars: each epoch's training values go to
    ``log_dir/train`` and the validation values to ``log_dir/validation`` as
    ``epoch_loss``, ``epoch_accuracy``, ... (``tensorboard --logdir log_dir`` shows
    them). ``update_freq`` an integer also writes ``batch_loss`` every that many
    batches. Needs the ``tensorboard`` package (pip install fastcnn[tensorboard])."""

    def __init__(self, log_dir="logs", update_freq="epoch"):
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError:
            raise ImportError("the TensorBoard callback writes event files with the tensorboard "
                              "package, which is not installed: pip install fastcnn[tensorboard] "
                              "(or pip install tensorboard)") from None
        if update_freq != "epoch" and (isinstance(update_freq, bool) or
                                       not isinstance(update_freq, int) or update_freq < 1):
            raise InputError(f"update_freq must be 'epoch' or a whole number of batches >= 1, "
                             f"got {update_freq!r}")
        self._event, self._summary, self._writer_class = event_pb2.Event, summary_pb2.Summary, \
            EventFileWriter
        self.log_dir, self.update_freq = Path(log_dir), update_freq
        self._writers: dict = {}
        self._batches = 0

    def _write(self, run: str, tag: str, value: float, step: int) -> None:
        if run not in self._writers:
            self._writers[run] = self._writer_class(str(self.log_dir / run))
        summary = self._summary(value=[self._summary.Value(tag=tag, simple_value=float(value))])
        self._writers[run].add_event(self._event(wall_time=time.time(), step=step, summary=summary))

    def on_train_begin(self, logs=None):
        from .fileio import check_writable

        check_writable(self.log_dir / "train" / "events", create_folders=True)

    def on_batch_end(self, batch, logs=None):
        self._batches += 1
        if self.update_freq != "epoch" and self._batches % self.update_freq == 0 and logs:
            self._write("train", "batch_loss", logs.get("batch_loss", logs["loss"]), self._batches)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            if not isinstance(value, (int, float, np.floating, np.integer)):
                continue
            run, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self._write(run, f"epoch_{name}", value, epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
