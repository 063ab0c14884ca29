"""Metrics that are not specific to one task family, written against the reference tools' definitions.

Accuracy, F1 (binary / macro / micro, as scikit-learn with ``zero_division=0``), Matthews
correlation (scikit-learn's multi-class formula), Pearson and Spearman (ties take their average
rank, as SciPy), multi-label micro / macro F1. Task-specific metrics (entity F1, SQuAD EM / F1) live
with their family in :mod:`fnet.tasks`; ``fnet.tasks.compute_metrics(task, ...)`` picks a family's.

Only numpy is needed.
"""

from __future__ import annotations

import math
from typing import Any

from fnet.lazy import numpy as np  # imported on first use: the CLI reads this module for its flags

__all__ = [
    "accuracy",
    "f1_score",
    "matthews_corrcoef",
    "pearson",
    "spearman",
    "rankdata",
    "multi_label_scores",
    "prf",
    "paired_labels",
    "as_floats",
]


def _labels_from(predictions: Any) -> np.ndarray:
    """Class ids from ids or logits (argmax over the last axis when 2-D)."""
    arr = predictions.detach().cpu().numpy() if hasattr(predictions, "detach") else np.asarray(predictions)
    if arr.ndim == 2:
        arr = arr.argmax(-1)
    return arr.reshape(-1)


def paired_labels(predictions: Any, references: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _labels_from(predictions)
    r = np.asarray(references.detach().cpu().numpy() if hasattr(references, "detach") else references).reshape(-1)
    if p.shape[0] != r.shape[0]:
        raise ValueError(f"{p.shape[0]} predictions for {r.shape[0]} references")
    if p.shape[0] == 0:
        raise ValueError("no predictions")
    return p, r


def accuracy(predictions: Any, references: Any) -> float:
    """Fraction of exact matches (predictions may be logits)."""
    p, r = paired_labels(predictions, references)
    return float(np.mean(p == r))


def prf(tp: float, n_pred: float, n_true: float) -> tuple[float, float, float]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def f1_score(predictions: Any, references: Any, *, average: str = "binary", pos_label: Any = 1) -> float:
    """F1 as scikit-learn's ``f1_score(references, predictions, average=..., zero_division=0)``.

    ``binary``: F1 of ``pos_label``; ``macro``: unweighted mean over the labels present in either
    references or predictions; ``micro``: from global counts (equals accuracy for single-label).
    """
    p, r = paired_labels(predictions, references)
    if average == "binary":
        labels = set(np.unique(np.concatenate([p, r])).tolist())
        if len(labels) > 2:
            raise ValueError(f"average='binary' needs at most two classes, found {sorted(labels)}")
        tp = float(np.sum((p == pos_label) & (r == pos_label)))
        return prf(tp, float(np.sum(p == pos_label)), float(np.sum(r == pos_label)))[2]
    labels = np.unique(np.concatenate([p, r]))
    if average == "macro":
        scores = [
            prf(float(np.sum((p == c) & (r == c))), float(np.sum(p == c)), float(np.sum(r == c)))[2]
            for c in labels
        ]
        return float(np.mean(scores))
    if average == "micro":
        tp = float(np.sum(p == r))
        return prf(tp, float(p.size), float(r.size))[2]
    raise ValueError(f"average must be 'binary', 'macro' or 'micro', got {average!r}")


def matthews_corrcoef(predictions: Any, references: Any) -> float:
    """Matthews correlation, multi-class (Gorodkin's R_K, scikit-learn's formula); 0 when undefined."""
    p, r = paired_labels(predictions, references)
    classes, inv = np.unique(np.concatenate([r, p]), return_inverse=True)
    k = len(classes)
    r_idx, p_idx = inv[: r.size], inv[r.size:]
    confusion = np.zeros((k, k), dtype=np.float64)
    np.add.at(confusion, (r_idx, p_idx), 1.0)
    true_per_class = confusion.sum(axis=1)
    pred_per_class = confusion.sum(axis=0)
    correct = np.trace(confusion)
    n = confusion.sum()
    cov_tp = correct * n - np.dot(true_per_class, pred_per_class)
    cov_pp = n * n - np.dot(pred_per_class, pred_per_class)
    cov_tt = n * n - np.dot(true_per_class, true_per_class)
    if cov_pp * cov_tt == 0:
        return 0.0
    return float(cov_tp / math.sqrt(cov_tt * cov_pp))


def as_floats(x: Any) -> np.ndarray:
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return arr.astype(np.float64).reshape(-1)


def pearson(predictions: Any, references: Any) -> float:
    """Pearson correlation coefficient; ``nan`` when either side is constant (as SciPy)."""
    x, y = as_floats(predictions), as_floats(references)
    if x.size != y.size:
        raise ValueError(f"{x.size} predictions for {y.size} references")
    if x.size < 2:
        raise ValueError("correlation needs at least two values")
    dx, dy = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(np.dot(dx, dx)) * float(np.dot(dy, dy)))
    if denom == 0.0:
        return float("nan")
    value = float(np.dot(dx, dy)) / denom
    return max(-1.0, min(1.0, value))


def rankdata(values: Any) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    x = as_floats(values)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(x.size, dtype=np.float64)
    # boundaries of runs of equal values in sorted order
    starts = np.flatnonzero(np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]]))
    ends = np.concatenate([starts[1:], [x.size]])
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + 1 + e) / 2.0  # mean of ranks s+1 .. e
    return ranks


def spearman(predictions: Any, references: Any) -> float:
    """Spearman rank correlation: Pearson on average ranks (ties handled as SciPy)."""
    return pearson(rankdata(predictions), rankdata(references))


def multi_label_scores(predictions: Any, references: Any, *, threshold: float = 0.0) -> dict[str, float]:
    """Multi-label: ``predictions`` are logits (positive when ``> threshold``; pass 0.5 for
    probabilities) or 0/1; returns micro F1, macro F1 (over labels) and subset accuracy."""
    p = as_floats(predictions).reshape(np.shape(predictions)) > threshold
    r = as_floats(references).reshape(np.shape(references)) > 0.5
    if p.shape != r.shape or p.ndim != 2:
        raise ValueError(f"multi-label predictions {p.shape} and references {r.shape} must be equal 2-D shapes")
    tp = float(np.sum(p & r))
    micro = prf(tp, float(p.sum()), float(r.sum()))[2]
    per_label = [prf(float(np.sum(p[:, j] & r[:, j])), float(p[:, j].sum()), float(r[:, j].sum()))[2]
                 for j in range(p.shape[1])]
    return {"f1_micro": micro, "f1_macro": float(np.mean(per_label)),
            "subset_accuracy": float(np.mean(np.all(p == r, axis=1)))}
