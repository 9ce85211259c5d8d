"""All Prometheus metrics of the consumer, in one place.

Names carry units (`_total`, `_seconds`); label values are bounded sets (stages, labels,
reasons, partitions), never post ids or texts. `Metrics(registry)` lets tests use a fresh
registry each.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

STAGES = ("decode", "cache_lookup", "inference", "cache_write", "dead_letter", "database", "commit")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONFIDENCE_BUCKETS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


class BatchHistogram:
    """A histogram without labels that takes a batch of observations at a time.

    For the per-post histograms: `Histogram.observe` (a lock, a loop over the buckets) per post
    cost more than classifying the post's text on the warm path; here a batch is one
    `searchsorted`. Exposed like a `Histogram`: `_bucket{le}`, `_sum`, `_count`.
    """

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = np.array([*buckets, float("inf")], dtype=np.float64)
        self._counts = np.zeros(len(self._bounds), dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: np.ndarray) -> None:
        # Bucket i counts values <= bound i (and > bound i-1), as Histogram.observe does.
        counts = np.bincount(np.searchsorted(self._bounds, values), minlength=len(self._bounds))
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cumulative, total = np.cumsum(self._counts).tolist(), self._sum
        buckets = [
            (floatToGoString(bound), count)
            for bound, count in zip(self._bounds.tolist(), cumulative, strict=True)
        ]
        yield HistogramMetricFamily(
            self._name, self._documentation, buckets=buckets, sum_value=total
        )

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self._name, self._documentation)


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        self.posts_consumed = counter(
            "sentiment_posts_consumed_total", "Kafka messages read from the posts topic."
        )
        self.posts_classified = counter(
            "sentiment_posts_classified_total", "Posts classified, by predicted label.", ("label",)
        )
        self.posts_failed = counter(
            "sentiment_posts_failed_total", "Posts refused or failed, by reason.", ("reason",)
        )
        self.dead_letters = counter(
            "sentiment_dead_letters_total", "Messages sent to the dead-letter topic.", ("reason",)
        )
        self.results_stored = counter(
            "sentiment_results_stored_total", "New rows committed to PostgreSQL."
        )
        self.duplicates_skipped = counter(
            "sentiment_duplicate_posts_total", "Posts whose id was already stored (no new row)."
        )
        self.cache_requests = counter(
            "sentiment_cache_requests_total", "Cache lookups by result.", ("result",)
        )
        self.cache_admissions = counter(
            "sentiment_cache_admissions_total",
            "New results offered to the cache: admitted (written, unless Redis is failing) or "
            "left out at their text's first sighting (SENTIMENT_CACHE_ADMISSION=repeats).",
            ("decision",),
        )
        self.cache_errors = counter(
            "sentiment_cache_errors_total",
            "Redis errors and skipped cache writes (the service goes on without cache).",
        )
        self.database_errors = counter(
            "sentiment_database_errors_total", "Failed database writes (retried)."
        )
        self.kafka_errors = counter(
            "sentiment_kafka_errors_total", "Kafka produce/commit/poll failures.", ("operation",)
        )
        self.model_inferences = counter(
            "sentiment_model_inferences_total", "Texts run through the model (cache misses)."
        )
        self.batch_size = Histogram(
            "sentiment_batch_size_posts",
            "Messages per micro-batch.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.stage_duration = Histogram(
            "sentiment_stage_duration_seconds",
            "Time per batch spent in each stage.",
            ("stage",),
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.end_to_end_latency = BatchHistogram(
            "sentiment_end_to_end_latency_seconds",
            "From the post's produce time to its database commit.",
            LATENCY_BUCKETS,
            registry,
        )
        self.confidence = BatchHistogram(
            "sentiment_prediction_confidence",
            "Confidence of each prediction.",
            CONFIDENCE_BUCKETS,
            registry,
        )
        self.consumer_lag = Gauge(
            "sentiment_consumer_lag_messages",
            "Messages behind the partition's end.",
            ("topic", "partition"),
            registry=registry,
        )
        self.model_info = Gauge(
            "sentiment_model_info",
            "The loaded model bundle (value 1).",
            ("version", "quantized"),
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            "sentiment_assigned_partitions",
            "Partitions this consumer owns now.",
            registry=registry,
        )
        self.last_batch = Gauge(
            "sentiment_last_batch_timestamp_seconds",
            "When the last batch was committed.",
            registry=registry,
        )
        self.predict_requests = counter(
            "sentiment_predict_requests_total", "POST /predict calls by outcome.", ("outcome",)
        )
        for stage in STAGES:
            self.stage_duration.labels(stage)
        for result in ("hit", "miss"):
            self.cache_requests.labels(result)
        for decision in ("admitted", "first_seen"):
            self.cache_admissions.labels(decision)
        for label in ("negative", "neutral", "positive"):
            self.posts_classified.labels(label)
