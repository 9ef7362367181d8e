"""LogSoftmax: log-probabilities over the class axis, for an NLL loss (torch.nn.LogSoftmax(dim=1))."""

from __future__ import annotations

from .activations import _Activation


class LogSoftmax(_Activation):
    """(N, L) -> (N, L) log-probabilities, x - logsumexp(x) per row. Train it with
    ``loss="nll"`` (torch.nn.NLLLoss); together they compute what cross-entropy on the
    logits does."""

    kernel = "log_softmax"

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"LogSoftmax expects (N, L) inputs, the previous layer gives "
                             f"(N, {', '.join(map(str, input_shape))}) (add a Flatten?)")
        return input_shape
