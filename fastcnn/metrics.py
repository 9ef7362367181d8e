"""Metrics on host arrays: accuracy, top-k accuracy, one-vs-rest ROC AUC, confusion matrix."""

from __future__ import annotations

import re

import numpy as np


def _predicted(y_pred) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    return y_pred.argmax(axis=1) if y_pred.ndim == 2 else y_pred


def accuracy(y_true, y_pred) -> float:
    """Share of correct predictions. y_true (N,) labels; y_pred (N,) labels or (N, L) scores."""
    y_true = np.asarray(y_true)
    return float(np.mean(_predicted(y_pred) == y_true)) if y_true.size else 0.0


def top_k_correct(y_true, scores, k: int = 5) -> int:
    """How many rows of scores (N, L) rank their true class (y_true (N,) labels) among the
    k highest. Ties count in the true class's favour, as Keras' in_top_k does: a row is
    right when fewer than k classes score strictly higher."""
    y_true = np.asarray(y_true).astype(np.int64)
    scores = np.asarray(scores)
    true_scores = scores[np.arange(len(y_true)), y_true]
    higher = (scores > true_scores[:, None]).sum(axis=1)
    return int(np.count_nonzero(higher < k))


def top_k_accuracy(y_true, y_pred, k: int = 5) -> float:
    """Share of rows whose true class is among the k highest scores. y_true (N,) labels
    or one-hot rows (N, L); y_pred (N, L) scores (probabilities or logits)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a whole number >= 1, got {k!r}")
    y_true = np.asarray(y_true)
    if y_true.ndim == 2:
        y_true = y_true.argmax(axis=1)
    return top_k_correct(y_true, y_pred, k) / len(y_true) if len(y_true) else 0.0


sparse_top_k_categorical_accuracy = top_k_accuracy  # Keras' name (labels as y_true)


class TopKAccuracy:
    """A compile metric: ``compile(..., metrics=["accuracy", TopKAccuracy(k=3)])`` logs
    ``top_3_accuracy`` (and ``val_top_3_accuracy``). The strings "top_k_accuracy",
    "sparse_top_k_categorical_accuracy" and "top_k_categorical_accuracy" mean k=5, as in
    Keras; "top_3_accuracy" means k=3."""

    def __init__(self, k: int = 5):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a whole number >= 1, got {k!r}")
        self.k = k
        self.name = f"top_{k}_accuracy"


_TOP_K_NAMES = ("top_k_accuracy", "sparse_top_k_categorical_accuracy",
                "top_k_categorical_accuracy")


def top_k_of(name) -> int | None:
    """k of a top-k metric's name or object (None for any other metric)."""
    if isinstance(name, TopKAccuracy):
        return name.k
    if name in _TOP_K_NAMES:
        return 5
    match = re.fullmatch(r"top_(\d+)_accuracy", name) if isinstance(name, str) else None
    return int(match.group(1)) if match and int(match.group(1)) >= 1 else None


def _binary_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney U statistic, ties counted half."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, dtype=np.float64)
    # average ranks over runs of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], scores.size]
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc(y_true, probabilities, average: str = "macro") -> float | np.ndarray:
    """One-vs-rest ROC AUC. y_true (N,) labels; probabilities (N, L).

    ``average="macro"`` returns the mean over classes present in y_true;
    ``None`` returns the per-class array (NaN for a class absent from y_true).
    """
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    per_class = np.array([_binary_auc(y_true == k, probabilities[:, k])
                          for k in range(probabilities.shape[1])])
    if average is None:
        return per_class
    return float(np.nanmean(per_class))


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """(L, L) int64 counts: row = true class, column = predicted class."""
    y_true = np.asarray(y_true).astype(np.int64)
    predicted = _predicted(y_pred).astype(np.int64)
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=0), predicted.max(initial=0))) + 1
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (y_true, predicted), 1)
    return counts


def per_class_accuracy(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """(L,) recall of each class (NaN for a class with no samples)."""
    counts = confusion_matrix(y_true, y_pred, num_classes)
    totals = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(counts) / totals
