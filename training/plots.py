"""Training curves, confusion matrix and ROC curves as PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

from inference.decision import LABELS


def plot_curves(history: list[dict[str, float]], path: Path) -> None:
    steps = [h["step"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(steps, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(steps, [h["valid_loss"] for h in history], label="validation")
    ax_loss.set(xlabel="step", ylabel="loss", title="loss")
    ax_loss.legend()
    ax_acc.plot(steps, [h["valid_accuracy"] for h in history], label="pos/neg accuracy")
    if any("valid_macro_recall" in h for h in history):
        ax_acc.plot(
            steps,
            [h.get("valid_macro_recall", np.nan) for h in history],
            label="3-class macro recall",
        )
    ax_acc.set(xlabel="step", title="validation")
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(labels: np.ndarray, pred: np.ndarray, path: Path, title: str) -> None:
    present = sorted(set(labels.tolist()) | set(pred.tolist()))
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ConfusionMatrixDisplay.from_predictions(
        labels,
        pred,
        labels=present,
        display_labels=[LABELS[i] for i in present],
        ax=ax,
        colorbar=False,
    )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """curves: name -> (labels 0/1, positive probability)."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, (labels, scores) in curves.items():
        keep = labels < 2
        if len(set(labels[keep].tolist())) == 2:
            RocCurveDisplay.from_predictions(labels[keep], scores[keep], name=name, ax=ax)
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set_title("ROC (held-out rows)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
