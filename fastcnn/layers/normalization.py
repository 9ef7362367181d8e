"""Batch normalisation: BatchNorm2d (N, C, H, W), BatchNorm1d (N, F) and Keras'
BatchNormalization, with PyTorch's parameters, running statistics and momentum."""

from __future__ import annotations

import numpy as np

from .. import functional
from ..errors import InputError
from ..parameter import Parameter
from .base import Layer


class _BatchNorm(Layer):
    """Normalises each channel (axis 1) by the batch's mean and variance in training and by
    the running statistics in inference, then scales by ``weight`` and shifts by ``bias``
    (C,) like torch.nn.BatchNorm2d. ``momentum`` weighs each batch in the running
    statistics (PyTorch's convention: running = (1 - momentum) * running + momentum *
    batch; None: the cumulative average over every batch so far), which are saved in
    ``state_dict`` and checkpoints as ``running_mean``, ``running_var`` (the unbiased
    variance) and ``num_batches_tracked``. ``affine=False`` keeps weight 1 and bias 0
    frozen. Training needs more than one sample per batch."""

    training_differs = True
    min_training_batch = 2
    ranks = ()  # per-sample input ranks the layer takes

    def __init__(self, num_features: int | None = None, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        if num_features is not None and (isinstance(num_features, bool) or int(num_features) != num_features
                                         or num_features < 1):
            raise ValueError(f"{type(self).__name__} num_features must be a whole number >= 1, "
                             f"got {num_features!r}")
        if not float(eps) > 0:
            raise ValueError(f"{type(self).__name__} eps must be > 0, got {eps!r}")
        if momentum is not None and not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"{type(self).__name__} momentum must be in [0, 1] or None, got {momentum!r}")
        self.num_features = None if num_features is None else int(num_features)
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.buffers: dict[str, Parameter] = {}
        self.num_batches_tracked = 0

    def compute_output_shape(self, input_shape):
        if len(input_shape) not in self.ranks:
            wanted = " or ".join(f"(N, C{', H, W' if rank == 3 else ''})" for rank in self.ranks)
            raise ValueError(f"{self.describe()} expects {wanted} inputs; the previous layer gives "
                             f"(N, {', '.join(map(str, input_shape))})")
        if self.num_features is None:
            self.num_features = int(input_shape[0])
        if input_shape[0] != self.num_features:
            raise ValueError(f"{self.describe()} has {self.num_features} features; the previous "
                             f"layer gives {input_shape[0]} channels")
        return input_shape

    def create_parameters(self, rng):
        ones, zeros = np.ones(self.num_features, np.float32), np.zeros(self.num_features, np.float32)
        self.params["weight"] = Parameter(ones)
        self.params["bias"] = Parameter(zeros)
        self.buffers = {"running_mean": Parameter(zeros, trainable=False),
                        "running_var": Parameter(ones, trainable=False)}

    def build(self, input_shape, rng=None):
        shape = super().build(input_shape, rng)
        if not self.affine:
            self.freeze()
        return shape

    def unfreeze(self):
        return self if not self.affine else super().unfreeze()

    # ---- state ---------------------------------------------------------------------
    def get_state(self) -> dict:
        state = {key: buffer.numpy() for key, buffer in self.buffers.items()}
        state["num_batches_tracked"] = np.array(self.num_batches_tracked, dtype=np.int64)
        return state

    def set_state(self, state: dict) -> None:
        expected = {"running_mean", "running_var", "num_batches_tracked"}
        if set(state) != expected:
            raise InputError(f"{self.describe()} state needs exactly {sorted(expected)}, got "
                             f"{sorted(state)}")
        for key in ("running_mean", "running_var"):
            value = np.asarray(state[key], dtype=np.float32)
            if value.shape != (self.num_features,) or not np.isfinite(value).all():
                raise InputError(f"{self.describe()} {key} must be {self.num_features} finite values")
            self.buffers[key].assign(value)
        if (state["running_var"] < 0).any():
            raise InputError(f"{self.describe()} running_var holds negative variances")
        count = np.asarray(state["num_batches_tracked"])
        if count.shape != () or count.dtype.kind not in "iu" or count < 0:
            raise InputError(f"{self.describe()} num_batches_tracked must be a whole number >= 0")
        self.num_batches_tracked = int(count)

    # ---- running ---------------------------------------------------------------------
    def forward(self, x, training=False):
        n = x.shape[0]
        if training and n < self.min_training_batch:
            raise InputError(
                f"{self.describe()} got a batch of {n} sample(s) in training: batch statistics "
                f"need at least {self.min_training_batch} samples. Use a batch size of "
                f"{self.min_training_batch} or more (in fit, pick a batch_size that does not "
                "leave a smaller last batch), or run it in inference mode")
        momentum = 0.0
        if training:
            self.num_batches_tracked += 1
            momentum = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked
        return self._normalise(x, momentum, training, keep=True)

    def infer(self, x):
        """The running statistics' normalisation without xhat: one read and one write."""
        return self._normalise(x, 0.0, False, keep=False)

    def _normalise(self, x, momentum, training, keep):
        out = self.workspace.get("out", x.shape)
        xhat = self.workspace.get("xhat", x.shape) if keep else None
        invstd = self.workspace.get("invstd", (self.num_features,))
        functional.batchnorm_forward(x, self.params["weight"].data, self.params["bias"].data,
                                     self.buffers["running_mean"].data,
                                     self.buffers["running_var"].data, momentum, self.eps,
                                     training, out, xhat, invstd)
        self._saved = (xhat, invstd, training) if keep else None
        return out

    def backward(self, dout, need_input_grad=True):
        if not self.trainable and not need_input_grad:
            return None
        if self._saved is None:
            raise RuntimeError(f"{self.describe()}: backward after infer(), which keeps nothing "
                               "for it; run forward(x) first")
        xhat, invstd, training = self._saved
        weight, bias = self.params["weight"], self.params["bias"]
        dweight = weight.grad_buffer() if self.trainable else self.workspace.get("dweight", weight.shape)
        dbias = bias.grad_buffer() if self.trainable else self.workspace.get("dbias", bias.shape)
        dx = self.workspace.get("dx", dout.shape) if need_input_grad else None
        functional.batchnorm_backward(dout, xhat, weight.data, invstd, training, dx, dweight, dbias)
        return dx

    def get_config(self):
        return {**super().get_config(), "num_features": self.num_features, "eps": self.eps,
                "momentum": self.momentum, "affine": self.affine}


class BatchNorm2d(_BatchNorm):
    """torch.nn.BatchNorm2d: x (N, C, H, W) -> (N, C, H, W), statistics over N, H, W."""

    ranks = (3,)


class BatchNorm1d(_BatchNorm):
    """torch.nn.BatchNorm1d: x (N, F) -> (N, F), statistics over N."""

    ranks = (1,)


class BatchNormalization(_BatchNorm):
    """Keras' BatchNormalization over axis 1 (channels first, as fastcnn's layouts), for
    (N, C, H, W) or (N, F) inputs. Keras' ``momentum`` (default 0.99) weighs the *running*
    statistics, the opposite of PyTorch's: it is stored as PyTorch's 1 - momentum.
    ``epsilon`` defaults to Keras' 1e-3; ``center``/``scale`` False are not supported."""

    ranks = (1, 3)

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, num_features: int | None = None,
                 name: str | None = None, trainable: bool = True, center: bool = True,
                 scale: bool = True, axis: int = 1):
        if not (center and scale):
            raise ValueError("BatchNormalization(center=False/scale=False) is not supported; "
                             "use BatchNorm2d(affine=False) to drop both")
        if axis not in (1, -3):
            raise ValueError(f"BatchNormalization axis={axis}: fastcnn's layouts are channels first "
                             "(N, C, H, W), so the channel axis is 1")
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"BatchNormalization momentum must be in [0, 1], got {momentum!r}")
        super().__init__(num_features, eps=epsilon, momentum=1.0 - float(momentum), name=name,
                         trainable=trainable)

    def get_config(self):
        config = super().get_config()
        config.pop("affine")
        epsilon = config.pop("eps")
        return {**config, "momentum": 1.0 - config["momentum"], "epsilon": epsilon}
