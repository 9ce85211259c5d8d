"""Choosing the neutral decision on 3-class validation rows (pure numpy)."""

from __future__ import annotations

import numpy as np

from inference.decision import Decision, decide
from training.metrics import three_class_metrics


def _macro_recall(labels: np.ndarray, logits: np.ndarray, decision: Decision) -> float:
    pred, _, _ = decide(logits, decision)
    return three_class_metrics(labels, pred).get("macro_recall", 0.0)


def tune_decision(head: str, logits: np.ndarray, labels: np.ndarray) -> tuple[Decision, float]:
    """Best decision for 3-class macro-recall; labels must contain neutral rows."""
    if head == "binary":
        grid = [
            Decision(kind="band", neutral_low=lo, neutral_high=hi)
            for lo in np.arange(0.05, 0.501, 0.025)
            for hi in np.arange(0.50, 0.951, 0.025)
        ]
    else:
        grid = [Decision(kind="argmax", neutral_bias=b) for b in np.arange(-2.0, 2.01, 0.1)]
    scored = [(_macro_recall(labels, logits, d), d) for d in grid]
    best_score, best = max(scored, key=lambda item: item[0])
    return _rounded(best), best_score


def _rounded(d: Decision) -> Decision:
    return Decision(
        kind=d.kind,
        neutral_low=round(float(d.neutral_low), 4),
        neutral_high=round(float(d.neutral_high), 4),
        neutral_bias=round(float(d.neutral_bias), 4),
    )
