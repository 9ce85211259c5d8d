"""Cache first, model for the misses: shared by the stream loop and POST /predict."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from itertools import compress

from common.tuples import named_tuples
from consumer.batch import Verdict
from consumer.cache import PredictionCache, RepeatedTexts
from consumer.metrics import Metrics
from inference import SentimentModel
from inference.model import AroundRun


class CachedClassifier:
    def __init__(
        self,
        model: SentimentModel,
        cache: PredictionCache,
        metrics: Metrics,
        repeats: RepeatedTexts | None = None,
    ) -> None:
        """`repeats`: write a new result only if its text was seen before (None: every one)."""
        self.model = model
        self.cache = cache
        self._metrics = metrics
        self._repeats = repeats

    @property
    def version(self) -> str:
        return self.model.version

    def classify(
        self,
        cleaned_texts: Sequence[str],
        *,
        remember: bool = True,
        around_run: AroundRun = nullcontext,
    ) -> dict[str, Verdict]:
        """Verdicts for distinct cleaned texts: one cache round trip, one model call.

        remember=False leaves the new predictions out of the cache, for the caller to pass to
        `remember` later (the stream loop does it on a thread of its own). `around_run` goes to
        the model (SentimentModel.logits_cleaned).
        """
        stage = self._metrics.stage_duration
        started = time.perf_counter()
        cached = self.cache.get_many(cleaned_texts)
        looked_up = time.perf_counter()
        stage.labels("cache_lookup").observe(looked_up - started)

        verdicts = {
            text: Verdict(hit, cached=True)
            for text, hit in zip(cleaned_texts, cached, strict=True)
            if hit is not None
        }
        misses = [text for text, hit in zip(cleaned_texts, cached, strict=True) if hit is None]
        self._metrics.cache_requests.labels("hit").inc(len(verdicts))
        self._metrics.cache_requests.labels("miss").inc(len(misses))
        if misses:
            predictions = self.model.predict_cleaned(misses, around_run)
            stage.labels("inference").observe(time.perf_counter() - looked_up)
            self._metrics.model_inferences.inc(len(misses))
            fresh = named_tuples(Verdict, predictions, [False] * len(predictions))
            verdicts.update(zip(misses, fresh, strict=True))
            if remember:
                self.remember(verdicts)
        return verdicts

    def remember(self, verdicts: dict[str, Verdict]) -> None:
        """Write the verdicts that came from the model to the cache (those it admits)."""
        started = time.perf_counter()
        fresh = [
            (text, verdict.prediction) for text, verdict in verdicts.items() if not verdict.cached
        ]
        admissions = self._metrics.cache_admissions
        if self._repeats is not None and fresh:
            seen = self._repeats.seen_before([text for text, _ in fresh])
            admitted = list(compress(fresh, seen))
            admissions.labels("first_seen").inc(len(fresh) - len(admitted))
            fresh = admitted
        admissions.labels("admitted").inc(len(fresh))
        self.cache.put_many(fresh)
        self._metrics.stage_duration.labels("cache_write").observe(time.perf_counter() - started)
