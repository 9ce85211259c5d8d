"""From model logits to labels and probabilities (numpy in, numpy out)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

LABELS = ("negative", "positive", "neutral")  # index = dataset label (0, 1, 2)
NEGATIVE, POSITIVE, NEUTRAL = 0, 1, 2


@dataclass(frozen=True)
class Decision:
    """How logits become a label.

    kind="band": one logit, p = sigmoid; neutral when neutral_low < p < neutral_high.
    kind="argmax": three logits (negative, positive, neutral); `neutral_bias` is added to the
        neutral logit before the argmax (tuned on 3-class validation data).
    positive_probability is p for "band" and P(pos) / (P(pos) + P(neg)) for "argmax", so it
    is always the two-way positive-vs-negative probability used for ROC-AUC.
    """

    kind: Literal["band", "argmax"] = "argmax"
    neutral_low: float = 0.5
    neutral_high: float = 0.5
    neutral_bias: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        return cls(**data)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def class_probabilities(logits: np.ndarray, decision: Decision) -> np.ndarray:
    """[B, 3] probabilities in LABELS order (band: neutral = 1 - |2p - 1|, then renormalised)."""
    if decision.kind == "argmax":
        return _softmax(logits.astype(np.float64))
    p = _sigmoid(logits[:, 0].astype(np.float64))
    neutral = 1.0 - np.abs(2.0 * p - 1.0)
    probs = np.stack([1.0 - p, p, neutral], axis=1)
    return probs / probs.sum(axis=1, keepdims=True)


def positive_probability(logits: np.ndarray, decision: Decision) -> np.ndarray:
    if decision.kind == "band":
        return _sigmoid(logits[:, 0].astype(np.float64))
    return _sigmoid((logits[:, POSITIVE] - logits[:, NEGATIVE]).astype(np.float64))


def decide(logits: np.ndarray, decision: Decision) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (label ids [B], positive_probability [B], confidence [B])."""
    p_pos = positive_probability(logits, decision)
    probs = class_probabilities(logits, decision)
    if decision.kind == "band":
        labels = np.where(p_pos >= 0.5, POSITIVE, NEGATIVE)
        in_band = (p_pos > decision.neutral_low) & (p_pos < decision.neutral_high)
        labels = np.where(in_band, NEUTRAL, labels)
        confidence = np.where(
            in_band, 1.0 - np.abs(2.0 * p_pos - 1.0), np.maximum(p_pos, 1 - p_pos)
        )
    else:
        shifted = logits.astype(np.float64).copy()
        shifted[:, NEUTRAL] += decision.neutral_bias
        labels = shifted.argmax(axis=1)
        confidence = probs[np.arange(len(labels)), labels]
    return labels, p_pos, confidence
