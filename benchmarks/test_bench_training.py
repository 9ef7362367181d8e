"""Whole training steps (batch 64) and inference passes (batch 1000) of every zoo model
on every competitor; the naive loops run a few samples and report per sample.

``python -m pytest benchmarks/test_bench_training.py --benchmark-enable``; one
benchmark group per model and mode, e.g. "train pytorch_cnn".
"""

import pytest

from fastcnn import zoo


@pytest.mark.parametrize("model", zoo.names())
def test_training_step(model, competitor, groups, measure):
    measure(groups.model(model, "train"), competitor)


@pytest.mark.parametrize("model", zoo.names())
def test_inference(model, competitor, groups, measure):
    measure(groups.model(model, "infer"), competitor)
