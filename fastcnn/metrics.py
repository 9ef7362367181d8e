"""Metrics on host arrays: accuracy, one-vs-rest ROC AUC, confusion matrix."""

from __future__ import annotations

import numpy as np


def _predicted(y_pred) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    return y_pred.argmax(axis=1) if y_pred.ndim == 2 else y_pred


def accuracy(y_true, y_pred) -> float:
    """Share of correct predictions. y_true (N,) labels; y_pred (N,) labels or (N, L) scores."""
    y_true = np.asarray(y_true)
    return float(np.mean(_predicted(y_pred) == y_true)) if y_true.size else 0.0


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
