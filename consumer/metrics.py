"""All Prometheus metrics of the consumer, in one place.

Names carry units (`_total`, `_seconds`); label values are bounded sets (stages, labels,
reasons, partitions), never post ids or texts. `Metrics(registry)` lets tests use a fresh
registry each.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

STAGES = ("decode", "cache_lookup", "inference", "cache_write", "dead_letter", "database", "commit")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONFIDENCE_BUCKETS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


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
        self.end_to_end_latency = Histogram(
            "sentiment_end_to_end_latency_seconds",
            "From the post's produce time to its database commit.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.confidence = Histogram(
            "sentiment_prediction_confidence",
            "Confidence of each prediction.",
            buckets=CONFIDENCE_BUCKETS,
            registry=registry,
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
        for label in ("negative", "neutral", "positive"):
            self.posts_classified.labels(label)
