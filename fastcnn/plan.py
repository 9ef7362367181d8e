"""Execution plans: which layers of a Sequential run together, decided once per model and mode.

A plan is a list of steps over the model's leaf layers (nested Sequentials flattened).
A step runs one layer, or a Conv2D/Dense together with the activation layer after it
(one kernel) and, for a Conv2D, the max pool after that (contract.FUSED), through the
layer's own ``forward_fused``: every buffer a step touches belongs to the layer that
computes into it, and no layer carries settings made by its neighbours. Which layers
fuse is read from class attributes, not from a list of classes:

* ``fuses_activation`` (Conv2D, Dense): takes a following activation into its kernel
  when it has none of its own;
* ``contract_activation`` (ReLU -> "relu", Sigmoid -> "sigmoid"): the activation's
  name in ``contract.ACTIVATIONS``;
* ``fuses_pool`` (Conv2D) and ``fusable_pool`` (MaxPool2D: its window when the window
  is its stride, else 0).

A loss may fold the network's last layer into itself (cross-entropy takes the logits
before a final Softmax, ``loss.folds_layer == "Softmax"``): the plan then stops before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FUSIONS = ("activation", "pool")
"""The kinds of fusion a plan may make; ``Sequential.fusions`` picks which are on."""


@dataclass(frozen=True)
class Mode:
    """What a plan is for: ``fold`` the loss's folded layer away, ``keep`` what a backward
    pass needs (False in predict/evaluate: the convolutions skip keeping their columns)."""

    fold: bool
    keep: bool


MODES = {"train": Mode(fold=True, keep=True), "evaluate": Mode(fold=True, keep=False),
         "forward": Mode(fold=False, keep=True), "predict": Mode(fold=False, keep=False)}


class LayerStep:
    """One layer on its own; ``keep`` False when no backward pass follows."""

    def __init__(self, layer, keep=True):
        self.layer = layer
        self.layers = (layer,)
        self.keep = keep

    def forward(self, x, training):
        if not (self.keep or training):
            return self.layer.infer(x)
        return self.layer.forward(x, training=training)

    def backward(self, dout, need_input_grad):
        return self.layer.backward(dout, need_input_grad=need_input_grad)

    def describe(self) -> tuple:
        """(layer name, fused activation or None, fused pool layer name or None)."""
        return (self.layer.name, None, None)


class FusedStep(LayerStep):
    """A Conv2D or Dense run with ``activation`` (a contract name or None) applied in its
    kernel and, for a Conv2D, a max pool of window ``pool`` (0: none) in the same pass;
    ``keep`` False when no backward pass follows."""

    def __init__(self, layer, activation_layer=None, pool_layer=None, keep=True):
        super().__init__(layer, keep)
        self.layers = tuple(item for item in (layer, activation_layer, pool_layer) if item)
        self.activation = layer.activation or (activation_layer.contract_activation
                                               if activation_layer is not None else None)
        self.activation_layer, self.pool_layer = activation_layer, pool_layer
        self.pool = pool_layer.fusable_pool if pool_layer is not None else 0

    def forward(self, x, training):
        return self.layer.forward_fused(x, training, activation=self.activation, pool=self.pool,
                                        keep=self.keep)

    def describe(self) -> tuple:
        fused = self.activation_layer.contract_activation if self.activation_layer else None
        return (self.layer.name, fused, self.pool_layer.name if self.pool_layer else None)


@dataclass
class Plan:
    """The steps of one mode; ``folded`` is the last layer left to the loss (or None)."""

    steps: list
    folded: object = None
    mode: Mode = field(default_factory=lambda: MODES["forward"])

    def __len__(self) -> int:
        return len(self.steps)

    def describe(self) -> list[tuple]:
        """[(layer name, fused activation, fused pool name)] per step, for tests and logs."""
        return [step.describe() for step in self.steps]

    def first_trainable(self) -> int:
        """Index of the first step with a trainable parameter (len(steps) when none):
        the backward pass stops there."""
        return next((i for i, step in enumerate(self.steps)
                     if any(p.trainable for layer in step.layers for p in layer.params.values())),
                    len(self.steps))


def build_plan(layers: list, mode: Mode, loss=None, fusions=FUSIONS) -> Plan:
    """The plan of leaf ``layers`` for ``mode``, fusing the kinds named in ``fusions``."""
    layers = list(layers)
    folded = None
    if mode.fold and loss is not None and layers and \
            type(layers[-1]).__name__ == getattr(loss, "folds_layer", None):
        folded = layers.pop()
    steps, i = [], 0
    while i < len(layers):
        layer = layers[i]
        i += 1
        if not getattr(layer, "fuses_activation", False):
            steps.append(LayerStep(layer, keep=mode.keep))
            continue
        activation_layer = pool_layer = None
        if "activation" in fusions and layer.activation is None and i < len(layers) and \
                getattr(layers[i], "contract_activation", None) is not None:
            activation_layer = layers[i]
            i += 1
        if "pool" in fusions and getattr(layer, "fuses_pool", False) and i < len(layers) and \
                getattr(layers[i], "fusable_pool", 0):
            pool_layer = layers[i]
            i += 1
        steps.append(FusedStep(layer, activation_layer, pool_layer, keep=mode.keep))
    return Plan(steps, folded, mode)
