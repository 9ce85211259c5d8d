"""Training, top to bottom: data -> cleaning -> vocabulary -> BiLSTM -> early stopping ->
neutral decision -> held-out report -> checkpoint.

    python -m training train --config configs/release.toml
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from inference.decision import NEUTRAL, Decision, decide
from inference.vocab import Vocab, pad_batch
from textclean import CleaningConfig, clean_tokens
from training.config import Config
from training.data import Example, load_splits, write_label_text
from training.metrics import all_metrics
from training.model import BiLSTMClassifier, ModelArgs
from training.plots import plot_confusion, plot_curves, plot_roc
from training.tuning import tune_decision

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
PARITY_SAMPLES = 512


@dataclass
class Split:
    """Examples of one split, cleaned and encoded."""

    tokens: list[list[str]]
    ids: list[list[int]]
    labels: np.ndarray
    three_class: np.ndarray  # bool: the row's source has a neutral class
    sources: list[str]

    def __len__(self) -> int:
        return len(self.labels)


# ---------------------------------------------------------------- data


def _clean_one(args: tuple[str, CleaningConfig]) -> list[str]:
    return clean_tokens(*args)


def clean_many(texts: Sequence[str], cleaning: CleaningConfig, workers: int) -> list[list[str]]:
    if workers <= 1 or len(texts) < 5000:
        return [clean_tokens(t, cleaning) for t in tqdm(texts, desc="clean", mininterval=5)]
    with get_context("fork").Pool(workers) as pool:
        jobs = pool.imap(_clean_one, ((t, cleaning) for t in texts), chunksize=500)
        return list(tqdm(jobs, total=len(texts), desc="clean", mininterval=5))


def make_split(rows: list[tuple[Example, bool]], config: Config) -> Split:
    # Repeated rows are cleaned once.
    unique = list(dict.fromkeys(r.text for r, _ in rows))
    cleaned = dict(
        zip(unique, clean_many(unique, config.cleaning, config.train.threads), strict=True)
    )
    return Split(
        tokens=[cleaned[r.text] for r, _ in rows],
        ids=[],
        labels=np.array([r.label for r, _ in rows], dtype=np.int64),
        three_class=np.array([three for _, three in rows], dtype=bool),
        sources=[r.source for r, _ in rows],
    )


def encode(split: Split, vocab: Vocab, max_len: int, tail_tokens: int) -> None:
    split.ids = [vocab.encode(toks, max_len, tail_tokens) for toks in split.tokens]


def drop_neutral(split: Split) -> Split:
    keep = np.flatnonzero(split.labels != NEUTRAL)
    return Split(
        tokens=[split.tokens[i] for i in keep],
        ids=[split.ids[i] for i in keep],
        labels=split.labels[keep],
        three_class=split.three_class[keep],
        sources=[split.sources[i] for i in keep],
    )


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator, pool_batches: int = 50
) -> list[np.ndarray]:
    """Shuffle, sort by length inside pools of `pool_batches` batches, shuffle the batches:
    little padding, yet every epoch sees different neighbours."""
    order = rng.permutation(len(lengths))
    lengths_arr = np.asarray(lengths)
    batches = []
    pool = batch_size * pool_batches
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths_arr[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def to_tensors(split: Split, idx: np.ndarray) -> tuple[torch.Tensor, ...]:
    ids, lengths = pad_batch([split.ids[i] for i in idx])
    return (
        torch.from_numpy(ids),
        torch.from_numpy(lengths),
        torch.from_numpy(split.labels[idx]),
        torch.from_numpy(split.three_class[idx]),
    )


# ---------------------------------------------------------------- model


def compute_loss(logits: torch.Tensor, labels: torch.Tensor, three: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], labels.float())
    # Rows from two-class sources say nothing about neutral: leave the neutral logit out.
    neutral_mask = torch.zeros_like(logits)
    neutral_mask[:, NEUTRAL] = torch.where(three, 0.0, -1e4)
    return F.cross_entropy(logits + neutral_mask, labels)


@torch.no_grad()
def predict_logits(model: BiLSTMClassifier, split: Split, batch_size: int = 256) -> np.ndarray:
    model.eval()
    order = np.argsort([len(x) for x in split.ids], kind="stable")
    out = np.zeros((len(split), model.args.num_outputs), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, lengths, _, _ = to_tensors(split, idx)
        out[idx] = model(ids, lengths).numpy()
    return out


def validation_figures(logits: np.ndarray, split: Split, decision: Decision) -> dict[str, float]:
    labels_t = torch.from_numpy(split.labels)
    loss = compute_loss(torch.from_numpy(logits), labels_t, torch.from_numpy(split.three_class))
    pred, p_pos, _ = decide(logits, decision)
    figures = all_metrics(split.labels, p_pos, pred)
    out = {"valid_loss": float(loss), "valid_accuracy": figures.get("accuracy", math.nan)}
    if "macro_recall" in figures:
        out["valid_macro_recall"] = figures["macro_recall"]
    out["valid_score"] = balanced_score(source_report(logits, split, decision))
    return out


def balanced_score(report: dict[str, Any]) -> float:
    """Mean over sources of pos/neg accuracy, plus 3-class macro-recall where a source has it:
    every domain counts the same, however many rows it has."""
    parts = []
    for name, figures in report.items():
        if name != "all":
            parts += [figures.get("accuracy", math.nan), figures.get("macro_recall", math.nan)]
    return round(float(np.nanmean(parts)), 4)


def selection_value(figures: dict[str, float], criterion: str) -> float:
    """Higher is better."""
    return -figures["valid_loss"] if criterion == "loss" else figures["valid_score"]


def default_decision(head: str) -> Decision:
    return Decision(kind="band") if head == "binary" else Decision(kind="argmax")


# ---------------------------------------------------------------- reports


def source_report(logits: np.ndarray, split: Split, decision: Decision) -> dict[str, Any]:
    pred, p_pos, _ = decide(logits, decision)
    report: dict[str, Any] = {}
    for name in sorted(set(split.sources)):
        rows = np.array([s == name for s in split.sources])
        report[name] = all_metrics(split.labels[rows], p_pos[rows], pred[rows])
    report["all"] = all_metrics(split.labels, p_pos, pred)
    return report


def write_reports(
    out: Path,
    history: list[dict[str, float]],
    logits: np.ndarray,
    split: Split,
    decision: Decision,
    name: str,
) -> dict[str, Any]:
    report = source_report(logits, split, decision)
    pred, p_pos, _ = decide(logits, decision)
    plot_curves(history, out / "training_curves.png")
    plot_confusion(split.labels, pred, out / "confusion_matrix.png", f"{name} rows")
    curves = {}
    for source in sorted(set(split.sources)):
        rows = np.array([s == source for s in split.sources])
        curves[source] = (split.labels[rows], p_pos[rows])
    plot_roc(curves, out / "roc.png")
    (out / "classification_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


# ---------------------------------------------------------------- main loop


def build_model(config: Config, vocab: Vocab) -> BiLSTMClassifier:
    m = config.model
    args = ModelArgs(
        vocab_size=len(vocab),
        embed_dim=m.embed_dim,
        hidden_dim=m.hidden_dim,
        num_outputs=1 if m.head == "binary" else 3,
        pooling=m.pooling,  # type: ignore[arg-type]
        dropout=m.dropout,
        embed_dropout=m.embed_dropout,
        pad_id=vocab.pad_id,
    )
    return BiLSTMClassifier(args)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def average_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of state dicts with the same keys (floating tensors only are averaged)."""
    out = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            out[key] = torch.stack([s[key] for s in states]).mean(0)
        else:
            out[key] = first.clone()
    return out


def try_averages(
    model: BiLSTMClassifier,
    window: Sequence[dict[str, torch.Tensor]],
    valid: Split,
    config: Config,
    decision: Decision,
    best_value: float,
) -> tuple[float, dict[str, torch.Tensor] | None, list[dict[str, float]]]:
    """Means of the last k (2..len(window)) snapshots of `window` (which ends at the best one),
    scored on validation. Returns (best value, best averaged state or None, figures per k)."""
    chosen: dict[str, torch.Tensor] | None = None
    tried = []
    for k in range(2, len(window) + 1):
        state = average_states(window[-k:])
        model.load_state_dict(state)
        figures = validation_figures(predict_logits(model, valid), valid, decision)
        figures["averaged_last"] = k
        tried.append(figures)
        logger.info("weight average %s", json.dumps(figures))
        value = selection_value(figures, config.train.early_stopping)
        if value > best_value:
            best_value, chosen = value, state
    return best_value, chosen, tried


def fit(
    model: BiLSTMClassifier,
    train: Split,
    valid: Split,
    config: Config,
    decision: Decision,
    extras: dict[str, Any] | None = None,
) -> list[dict[str, float]]:
    """Train with early stopping on validation loss; leaves the best weights in `model`.
    extras (optional) receives the weight-averaging figures when `average_last` > 1."""
    tc = config.train
    rng = np.random.default_rng(config.seed + tc.init_seed)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True
    )
    steps_per_epoch = math.ceil(len(train) / tc.batch_size)
    total = tc.max_steps or tc.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=tc.lr, total_steps=total, pct_start=0.05
    )
    eval_every = max(1, min(total, steps_per_epoch // max(1, tc.evals_per_epoch)))
    history: list[dict[str, float]] = []
    best = (-math.inf, {k: v.clone() for k, v in model.state_dict().items()})
    if tc.init_from:  # the second stage must beat the model it starts from
        start = validation_figures(predict_logits(model, valid), valid, decision)
        logger.info("eval %s", json.dumps({**start, "step": 0}))
        best = (selection_value(start, tc.early_stopping), best[1])
    bad_evals, step, running = 0, 0, []
    recent: deque[dict[str, torch.Tensor]] = deque(maxlen=max(1, tc.average_last))
    best_window: list[dict[str, torch.Tensor]] = []
    progress = tqdm(total=total, desc="train", mininterval=5)
    lengths = [len(x) for x in train.ids]
    while step < total:
        for idx in length_bucketed_batches(lengths, tc.batch_size, rng):
            model.train()
            ids, lens, labels, three = to_tensors(train, idx)
            loss = compute_loss(model(ids, lens), labels, three)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            scheduler.step()
            running.append(loss.item())
            step += 1
            progress.update()
            if step % eval_every == 0 or step == total:
                figures = validation_figures(predict_logits(model, valid), valid, decision)
                figures |= {"step": step, "train_loss": float(np.mean(running))}
                running = []
                history.append(figures)
                progress.set_postfix(
                    vloss=f"{figures['valid_loss']:.4f}", vscore=f"{figures['valid_score']:.4f}"
                )
                logger.info("eval %s", json.dumps(figures))
                value = selection_value(figures, tc.early_stopping)
                snapshot = {k: v.clone() for k, v in model.state_dict().items()}
                if tc.average_last > 1:
                    recent.append(snapshot)
                if value > best[0]:
                    best = (value, snapshot)
                    best_window = list(recent)
                    bad_evals = 0
                else:
                    bad_evals += 1
            if step >= total or bad_evals > tc.patience:
                break
        if bad_evals > tc.patience:
            logger.info("early stop at step %d", step)
            break
    progress.close()
    if tc.average_last > 1 and len(best_window) > 1:
        value, averaged, tried = try_averages(model, best_window, valid, config, decision, best[0])
        if extras is not None:
            extras["weight_average"] = {"tried": tried, "chosen": averaged is not None}
        if averaged is not None:
            best = (value, averaged)
    model.load_state_dict(best[1])
    return history


def train(config: Config) -> Path:
    """Run one training; returns the checkpoint path."""
    started = time.time()
    seed_everything(config.seed + config.train.init_seed)
    torch.set_num_threads(config.train.threads)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raw = load_splits(config)
    splits = {name: make_split(rows, config) for name, rows in raw.items()}
    for name, rows in raw.items():
        if name == "test" and rows:
            for source in sorted({r.source for r, _ in rows}):
                write_label_text(
                    [r for r, _ in rows if r.source == source],
                    out / "heldout" / f"{source}_test.csv.gz",
                )
    tc = config.train
    if tc.init_from:  # continue from a checkpoint: its vocabulary and weights
        model, previous = load_checkpoint(tc.init_from)
        vocab = Vocab(tuple(previous["vocab"]))
    else:
        vocab = Vocab.build(splits["train"].tokens, min_freq=tc.min_freq, max_size=tc.max_vocab)
    logger.info("vocabulary: %d tokens", len(vocab))
    for split in splits.values():
        encode(split, vocab, tc.max_len, tc.tail_tokens)
    train_split = splits["train"]
    if config.model.head == "binary":
        train_split = drop_neutral(train_split)
    if not tc.init_from:
        model = build_model(config, vocab)
    logger.info("model: %s, %d parameters", model.args, sum(p.numel() for p in model.parameters()))
    decision = default_decision(config.model.head)
    extras: dict[str, Any] = {}
    history = fit(
        model, train_split, _binary_view(splits["valid"], config), config, decision, extras
    )

    valid_logits = predict_logits(model, splits["valid"])
    neutral_rows = splits["valid"].three_class
    decision, tuned = tune_decision(
        config.model.head, valid_logits[neutral_rows], splits["valid"].labels[neutral_rows]
    )
    logger.info("decision %s (validation 3-class macro recall %.4f)", decision, tuned)

    report_split, report_name = (
        (splits["test"], "held-out") if len(splits["test"]) else (splits["valid"], "validation")
    )
    report = write_reports(
        out, history, predict_logits(model, report_split), report_split, decision, report_name
    )
    report["_split"] = report_name
    return save_checkpoint(
        out,
        model,
        vocab,
        config,
        decision,
        splits["valid"],
        {
            "report": report,
            "valid": source_report(valid_logits, splits["valid"], decision),
            "valid_3class_macro_recall_tuned": tuned,
            "train_rows": len(train_split),
            "train_seconds": round(time.time() - started, 1),
            "history": history,
            **extras,
        },
    )


def _binary_view(valid: Split, config: Config) -> Split:
    return drop_neutral(valid) if config.model.head == "binary" else valid


def save_checkpoint(
    out: Path,
    model: BiLSTMClassifier,
    vocab: Vocab,
    config: Config,
    decision: Decision,
    valid: Split,
    metrics: dict[str, Any],
) -> Path:
    rng = random.Random(config.seed)
    sample = rng.sample(range(len(valid)), min(PARITY_SAMPLES, len(valid)))
    checkpoint = {
        "model_args": model.args.to_dict(),
        "state_dict": model.state_dict(),
        "vocab": list(vocab.tokens),
        "cleaning": config.cleaning.to_dict(),
        "decision": decision.to_dict(),
        "max_len": config.train.max_len,
        "tail_tokens": config.train.tail_tokens,
        "config": _config_dict(config),
        # Real cleaned validation texts for the exporter's parity check.
        "parity_texts": [" ".join(valid.tokens[i]) for i in sample],
        "metrics": metrics,
    }
    path = out / CHECKPOINT
    torch.save(checkpoint, path)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    logger.info("wrote %s", path)
    return path


def _config_dict(config: Config) -> dict[str, Any]:
    data = asdict(config)
    data["sources"] = [asdict(s) for s in config.sources]
    return data


def load_checkpoint(path: str | Path) -> tuple[BiLSTMClassifier, dict[str, Any]]:
    # weights_only: the checkpoint holds tensors and plain containers, never pickled objects.
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = BiLSTMClassifier(ModelArgs(**checkpoint["model_args"]))
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    return model, checkpoint
