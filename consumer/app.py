"""Wiring: build every client from the settings, run the loop, close everything in order."""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import sys
import time
from types import FrameType

from kafka import KafkaConsumer, KafkaProducer
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from consumer.cache import PredictionCache, RepeatedTexts, redis_client
from consumer.classify import CachedClassifier
from consumer.coordinator import answer_known_coordinator_in_place
from consumer.http import OpsServer
from consumer.metrics import Metrics
from consumer.records import use_c_record_decoder
from consumer.service import StreamService
from consumer.settings import ConsumerSettings
from consumer.store import ResultStore
from inference import ModelBundle, SentimentModel
from schemas.migrate import apply_migrations

logger = logging.getLogger(__name__)

# kafka-python 3 does its network I/O on a thread of its own, and each poll() hands work to it
# and back several times. With the inference thread busy in Python, every hand-over waited
# up to Python's default 5 ms switch interval: a 256-record poll took 17-48 ms instead of 4-6 ms;
# at 1 ms, 11-13 ms (three measurements, `python -m benchmarks.poll_contention`).
GIL_SWITCH_INTERVAL_S = 0.001

# The garbage collector (for reference cycles; everything else is freed as it goes). The ~160k
# objects that imports and the model leave live as long as the process, yet every full
# collection walked them all: ~160 ms, with the GIL. And the youngest generation was collected
# every 700 allocations, about every 15 posts. Frozen after startup, and the youngest collected
# every GC_YOUNG_ALLOCATIONS, one saturation run spent 0.6 s collecting instead of 2.2 s
# (docs/performance.md).
GC_YOUNG_ALLOCATIONS = 50_000


def tune_garbage_collection() -> None:
    gc.collect()
    gc.freeze()  # what exists now is never collected, and no longer walked
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_ALLOCATIONS, older, oldest)


def build_classifier(
    settings: ConsumerSettings, metrics: Metrics
) -> tuple[CachedClassifier, ModelBundle]:
    bundle = ModelBundle.load(settings.bundle_path)
    model = SentimentModel(
        bundle, threads=settings.onnx_threads, quantized=settings.model_quantized
    )
    client = None
    if settings.cache_enabled:
        client = redis_client(settings.redis_url.get_secret_value(), settings.redis_timeout_seconds)
    cache = PredictionCache(
        client,
        model.version,
        settings.cache_ttl_seconds,
        metrics,
        retry_after_seconds=settings.cache_retry_after_seconds,
    )
    metrics.model_info.labels(model.version, str(settings.model_quantized).lower()).set(1)
    logger.info("model %s loaded from %s", model.version, bundle.path)
    repeats = RepeatedTexts() if settings.cache_admission == "repeats" else None
    return CachedClassifier(model, cache, metrics, repeats), bundle


def migrate_with_retry(dsn: str, attempts: int = 30) -> None:
    """Wait for the database like a pre-start step would, then apply pending migrations."""
    for attempt in range(1, attempts + 1):
        try:
            applied = apply_migrations(dsn)
            logger.info("migrations applied: %s", applied or "none pending")
            return
        except Exception as error:
            if attempt == attempts:
                raise
            logger.warning("database not ready (attempt %d/%d): %s", attempt, attempts, error)
            time.sleep(min(5.0, 0.2 * attempt))


def run(settings: ConsumerSettings) -> int:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    metrics = Metrics(registry)
    dsn = settings.postgres_dsn.get_secret_value()
    if settings.migrate_on_start:
        migrate_with_retry(dsn)
    classifier, bundle = build_classifier(settings, metrics)
    tune_garbage_collection()

    with contextlib.ExitStack() as resources:
        kafka_options = settings.kafka_client_options()
        consumer = KafkaConsumer(
            **kafka_options,
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.batch_max_size,
            max_poll_interval_ms=settings.max_poll_interval_ms,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(100, settings.session_timeout_ms // 3),
            fetch_max_wait_ms=max(1, min(100, settings.batch_max_wait_ms)),
        )
        resources.callback(_close_consumer, consumer)
        use_c_record_decoder(consumer)
        answer_known_coordinator_in_place(consumer)
        producer = KafkaProducer(**kafka_options, acks="all", linger_ms=5, retries=5)
        resources.callback(producer.close, 10)
        store = ResultStore(dsn)
        resources.callback(store.close)

        service = StreamService(
            settings, consumer, producer, classifier, bundle.cleaning, store, metrics
        )

        def readiness() -> dict[str, bool]:
            return {
                "model": True,
                "kafka": service.kafka_connected,
                "redis": classifier.cache.ping() if settings.cache_enabled else True,
                "database": store.ping(),
            }

        server = OpsServer(
            settings.http_host,
            settings.http_port,
            classifier,
            bundle.cleaning,
            readiness,
            metrics,
            registry,
        )
        server.start()
        resources.callback(server.stop)
        _stop_on_signals(service)
        service.subscribe()
        logger.info(
            "consuming %s as group %s (batches of ≤%d, ≤%d ms)",
            settings.posts_topic,
            settings.group_id,
            settings.batch_max_size,
            settings.batch_max_wait_ms,
        )
        service.run()
    logger.info("stopped cleanly")
    return 0


def _close_consumer(consumer: KafkaConsumer) -> None:
    consumer.close(autocommit=False)


def _stop_on_signals(service: StreamService) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        logger.info(
            "%s received: finishing the batch and leaving the group", signal.strsignal(signum)
        )
        service.stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
