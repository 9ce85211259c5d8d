"""Evaluation figures from labels and scores (numpy in, dict out)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    precision_recall_fscore_support,
    recall_score,
    roc_auc_score,
)


def binary_metrics(labels: np.ndarray, p_pos: np.ndarray) -> dict[str, Any]:
    """On rows labelled 0/1; the decision is p_pos >= 0.5 (neutral is not an option here)."""
    keep = labels < 2
    y, p = labels[keep], p_pos[keep]
    if len(y) == 0:
        return {"n": 0}
    pred = (p >= 0.5).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, pred, average="binary", zero_division=0
    )
    auc = float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else None
    return {
        "n": len(y),
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "precision": round(float(precision), 4),
        "recall": round(float(recall), 4),
        "f1": round(float(f1), 4),
        "roc_auc": None if auc is None else round(auc, 4),
    }


def three_class_metrics(labels: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Macro figures over negative/positive/neutral; only meaningful if label 2 rows exist."""
    if not (labels == 2).any():
        return {}
    kw = {"labels": [0, 1, 2], "average": "macro", "zero_division": 0}
    return {
        "n_3class": len(labels),
        "macro_f1": round(float(f1_score(labels, pred, **kw)), 4),
        "macro_recall": round(float(recall_score(labels, pred, **kw)), 4),
        "accuracy_3class": round(float(accuracy_score(labels, pred)), 4),
    }


def all_metrics(labels: np.ndarray, p_pos: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    return {**binary_metrics(labels, p_pos), **three_class_metrics(labels, pred)}
