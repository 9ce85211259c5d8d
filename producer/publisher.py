"""The Kafka side of the producer: send posts, count what the broker acknowledged."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kafka import KafkaProducer
from tqdm import tqdm

from producer.pacing import Pacer
from producer.settings import ProducerSettings
from producer.sources import Format, SourceRow, read_rows, to_post
from schemas.messages import IncomingPost

logger = logging.getLogger(__name__)

KeyChoice = Literal["post_id", "author", "none"]


@dataclass
class ReplayReport:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0


class DeliveryCounter:
    """Broker acknowledgements arrive on kafka-python's I/O thread: count them under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0
        self.first_error: Exception | None = None

    def ok(self, _metadata: object) -> None:
        with self._lock:
            self.delivered += 1

    def error(self, exception: Exception) -> None:
        with self._lock:
            self.failed += 1
            self.first_error = self.first_error or exception


def make_producer(settings: ProducerSettings) -> KafkaProducer:
    acks: int | str = (
        settings.producer_acks if settings.producer_acks == "all" else int(settings.producer_acks)
    )
    return KafkaProducer(
        **settings.kafka_client_options(),
        acks=acks,
        linger_ms=settings.producer_linger_ms,
        batch_size=settings.producer_batch_bytes,
        retries=5,
    )


def message_key(post: IncomingPost, choice: KeyChoice) -> bytes | None:
    if choice == "post_id":
        return post.post_id.encode()
    if choice == "author" and post.author:
        return post.author.encode()
    return None


def encode(post: IncomingPost) -> bytes:
    return post.model_dump_json(exclude_none=True, exclude_defaults=True).encode()


def looped(path: Path, fmt: Format, loop: bool) -> Iterator[tuple[int, SourceRow]]:
    for round_number in itertools.count() if loop else (0,):
        for row in read_rows(path, fmt):
            yield round_number, row


def replay(
    producer: KafkaProducer,
    topic: str,
    rows: Iterable[tuple[int, SourceRow]],
    *,
    source: str,
    limit: int | None,
    pacer: Pacer,
    key: KeyChoice = "post_id",
    progress: bool = True,
) -> ReplayReport:
    report, counter = ReplayReport(), DeliveryCounter()
    started = time.monotonic()
    bar = tqdm(total=limit, unit="post", disable=not progress, smoothing=0.1)
    for round_number, row in rows:
        if limit is not None and report.sent >= limit:
            break
        post = to_post(row, source, round_number)
        if post is None:
            report.skipped += 1
            continue
        pacer.wait(row.created_at)
        future = producer.send(topic, value=encode(post), key=message_key(post, key))
        future.add_callback(counter.ok).add_errback(counter.error)
        report.sent += 1
        bar.update(1)
    producer.flush()
    bar.close()
    report.seconds = time.monotonic() - started
    report.delivered, report.failed = counter.delivered, counter.failed
    if counter.first_error is not None:
        logger.error("%d posts failed, first error: %s", counter.failed, counter.first_error)
    return report
