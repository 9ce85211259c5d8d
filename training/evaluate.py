"""Evaluation on the serving path: bundle -> onnxruntime (never torch) -> one JSON object.

    python -m training evaluate --bundle models/sentiment-bilstm \
        --data ../shared/data/sst2/validation.csv
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from inference import ModelBundle, SentimentModel
from textclean import clean_text
from training.baselines import tfidf_scores, train_tfidf_logreg, vader_scores
from training.data import Example, read_examples
from training.metrics import all_metrics

logger = logging.getLogger(__name__)


def model_figures(model: SentimentModel, rows: list[Example]) -> dict[str, Any]:
    labels = np.array([r.label for r in rows])
    cleaned = [clean_text(r.text, model.bundle.cleaning) for r in rows]
    started = time.perf_counter()
    pred, p_pos, _ = model.decide_cleaned(cleaned)
    seconds = time.perf_counter() - started
    return {**all_metrics(labels, p_pos, pred), "model_seconds": round(seconds, 2)}


def baseline_figures(rows: list[Example], tfidf: Any | None, vader: bool) -> dict[str, Any]:
    labels = np.array([r.label for r in rows])
    texts = [r.text for r in rows]
    out: dict[str, Any] = {}
    if tfidf is not None:
        p_pos, pred = tfidf_scores(tfidf, texts)
        out["tfidf_logreg"] = all_metrics(labels, p_pos, pred)
    if vader:
        p_pos, pred = vader_scores(texts)
        out["vader"] = all_metrics(labels, p_pos, pred)
    return out


def load_training_texts(train_config: Path | None, train_data: list[Path]) -> list[Example]:
    """The baselines' training rows: the config's train split (as the model's), or files."""
    if train_config is not None:
        from training.config import load_config
        from training.data import load_splits

        rows = [r for r, _ in load_splits(load_config(train_config))["train"]]
        return list({r.text: r for r in rows}.values())  # drop oversampling repeats
    return [r for path in train_data for r in read_examples(path)]


def evaluate(
    bundle_dir: Path,
    data: list[Path],
    *,
    quantized: bool = False,
    threads: int = 1,
    baselines: bool = False,
    train_config: Path | None = None,
    train_data: list[Path] | None = None,
) -> dict[str, Any]:
    model = SentimentModel(ModelBundle.load(bundle_dir), threads=threads, quantized=quantized)
    tfidf = None
    if baselines:
        train_rows = load_training_texts(train_config, train_data or [])
        if not train_rows:
            raise ValueError("--baselines needs --train-config or --train-data")
        tfidf = train_tfidf_logreg(
            [r.text for r in train_rows], np.array([r.label for r in train_rows])
        )
    results = []
    for path in data:
        rows = read_examples(path)
        result = {"data": str(path), **model_figures(model, rows)}
        if baselines:
            result["baselines"] = baseline_figures(rows, tfidf, vader=True)
        results.append(result)
        logger.info("evaluated %s", path)
    header = {"bundle": model.version, "quantized": quantized}
    return {**header, **results[0]} if len(results) == 1 else {**header, "datasets": results}
