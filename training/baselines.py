"""What a user would otherwise pick: TF-IDF + logistic regression, and the VADER lexicon."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from inference.decision import NEGATIVE, NEUTRAL, POSITIVE

logger = logging.getLogger(__name__)

VADER_NEUTRAL = 0.05  # the lexicon authors' recommended compound threshold


def train_tfidf_logreg(texts: Sequence[str], labels: np.ndarray, seed: int = 1337) -> Pipeline:
    """Word 1-2 grams on the raw text; multinomial when neutral rows exist."""
    pipeline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=300_000, sublinear_tf=True),
        LogisticRegression(C=4.0, max_iter=1000, random_state=seed),
    )
    logger.info("fitting TF-IDF + logistic regression on %d texts", len(texts))
    pipeline.fit(list(texts), labels)
    return pipeline


def tfidf_scores(pipeline: Pipeline, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """-> (positive probability two-way, predicted label)."""
    probs = pipeline.predict_proba(list(texts))
    classes = list(pipeline.classes_)
    p_neg, p_pos = probs[:, classes.index(NEGATIVE)], probs[:, classes.index(POSITIVE)]
    return p_pos / np.maximum(p_pos + p_neg, 1e-12), np.asarray(classes)[probs.argmax(1)]


def vader_scores(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """-> ((compound + 1) / 2 as positive score, label by the +-0.05 compound rule)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    compound = np.array([analyzer.polarity_scores(t)["compound"] for t in texts])
    pred = np.where(compound >= VADER_NEUTRAL, POSITIVE, NEUTRAL)
    pred = np.where(compound <= -VADER_NEUTRAL, NEGATIVE, pred)
    return (compound + 1.0) / 2.0, pred
