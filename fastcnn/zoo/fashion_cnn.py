"""A Fashion-MNIST CNN written with Keras' spellings, and the recipe meant to reach 93%+.

Two blocks of [Conv2D(3x3, same, no bias) - BatchNormalization - ReLU] x 2 - MaxPool 2 -
Dropout 0.25 (32 then 64 filters), then Flatten - Dense(256, no bias) -
BatchNormalization - ReLU - Dropout 0.5 - Dense(10): the VGG-style network Keras users
write for Fashion-MNIST. No layer size is computed by hand. BatchNormalization's
momentum is 0.9 (PyTorch's 0.1) rather than Keras' 0.99, whose running statistics lag
for the first few hundred steps.

Recipe: SGD with Nesterov momentum 0.9 and L2 weight decay 5e-4, a one-cycle schedule
peaking at lr 0.1 stepped every batch, batch 128, 20 epochs on all 60,000 training
images, each batch augmented (shifts up to 10%, rotations up to 10 degrees, zoom
0.9-1.1, horizontal flips: a mirrored garment is the same garment), label smoothing 0.1;
scored on the 10,000 test images. Target: at least 93% test accuracy (mean of 3 seeds).
"""

from __future__ import annotations

from ..layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from ..model import Sequential
from .recipe import Recipe

RECIPE = Recipe(
    model="fashion_cnn", dataset="fashion-mnist", optimizer="sgd", lr=0.1, batch_size=128,
    epochs=20, optimizer_args={"momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
    loss={"name": "cross_entropy", "label_smoothing": 0.1},
    schedule={"name": "OneCycleLR"},
    augment={"degrees": 10.0, "translate": (0.1, 0.1), "scale": (0.9, 1.1),
             "horizontal_flip": True},
    split="all 60,000 training images; test on the 10,000 test images",
    reported={"test_accuracy": 0.93},
    reported_sources={"test_accuracy": "issue 22's target for this network (mean of 3 seeds)"},
    source="fastcnn issue 22: a Keras-style Fashion-MNIST CNN with BatchNorm, augmentation "
           "and a one-cycle schedule",
)


def _conv_block(filters: int, name: str) -> list:
    return [Conv2D(filters, (3, 3), padding="same", use_bias=False, name=f"{name}_conv"),
            BatchNormalization(momentum=0.9, name=f"{name}_bn"), ReLU(name=f"{name}_relu")]


def fashion_cnn(seed: int | None = None, num_classes: int = 10) -> Sequential:
    """(N, 1, 28, 28) -> class scores (N, num_classes) (logits; predict gives probabilities)."""
    return Sequential([
        *_conv_block(32, "block1a"), *_conv_block(32, "block1b"),
        MaxPool2D(pool_size=2, name="pool1"), Dropout(rate=0.25, name="dropout1"),
        *_conv_block(64, "block2a"), *_conv_block(64, "block2b"),
        MaxPool2D(pool_size=2, name="pool2"), Dropout(rate=0.25, name="dropout2"),
        Flatten(name="flatten"),
        Dense(256, use_bias=False, name="dense"),
        BatchNormalization(momentum=0.9, name="dense_bn"),
        ReLU(name="dense_relu"), Dropout(rate=0.5, name="dropout3"),
        Dense(num_classes, name="output"),
    ], seed=seed, input_shape=(1, 28, 28), name="fashion_cnn")
