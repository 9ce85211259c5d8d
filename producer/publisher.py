"""The Kafka side of the producer: send posts, count what the broker acknowledged."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from tqdm import tqdm

from producer.pacing import Pacer
from producer.settings import ProducerSettings
from producer.sources import (
    Format,
    SkippedRow,
    SourceError,
    SourceRow,
    build_post,
    read_records,
)
from schemas.messages import IncomingPost

logger = logging.getLogger(__name__)

KeyChoice = Literal["post_id", "author", "none"]
INTERRUPTED_FLUSH_SECONDS = 5.0


@dataclass
class ReplayReport:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    rows_read: int = 0
    skip_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.skip_reasons[reason] += 1


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


def looped(path: Path, fmt: Format, loop: bool) -> Iterator[tuple[int, SourceRow | SkippedRow]]:
    """(round, record) for one pass over the file, or for pass after pass with `loop`."""
    for round_number in itertools.count() if loop else (0,):
        empty = True
        for record in read_records(path, fmt):
            empty = False
            yield round_number, record
        if empty:  # another pass would be empty too
            return


def replay(
    producer: KafkaProducer,
    topic: str,
    rows: Iterable[tuple[int, SourceRow | SkippedRow]],
    *,
    source: str,
    limit: int | None,
    pacer: Pacer,
    key: KeyChoice = "post_id",
    progress: bool = True,
    report: ReplayReport | None = None,
) -> ReplayReport:
    """Publish the rows and wait for every acknowledgement. A round of `rows` that published
    nothing ends the replay (the next would not publish anything either). On a SourceError,
    or Ctrl-C (waiting then only briefly), fills in `report` (pass one to see it) with the
    posts acknowledged so far and re-raises."""
    report = report if report is not None else ReplayReport()
    counter = DeliveryCounter()
    started = time.monotonic()
    bar = tqdm(total=limit, unit="post", disable=not progress, smoothing=0.1)
    try:
        for post in itertools.islice(_publishable(rows, source, report), limit):
            pacer.wait(post.created_at)
            future = producer.send(topic, value=encode(post), key=message_key(post, key))
            future.add_callback(counter.ok).add_errback(counter.error)
            report.sent += 1
            bar.update(1)
        producer.flush()
    except KeyboardInterrupt:
        _flush_briefly(producer)
        raise
    except SourceError:
        producer.flush()
        raise
    finally:
        bar.close()
        report.seconds = time.monotonic() - started
        report.delivered, report.failed = counter.delivered, counter.failed
    if counter.first_error is not None:
        logger.error("%d posts failed, first error: %s", counter.failed, counter.first_error)
    return report


def _publishable(
    rows: Iterable[tuple[int, SourceRow | SkippedRow]], source: str, report: ReplayReport
) -> Iterator[IncomingPost]:
    """The posts to send, counting the rows read and skipped into `report`; stops at a new
    round when the previous one sent nothing (`report.sent` is counted by the caller)."""
    current_round, sent_before_round = 0, 0
    for round_number, record in rows:
        if round_number != current_round:
            if report.sent == sent_before_round:
                return
            current_round, sent_before_round = round_number, report.sent
        report.rows_read += 1
        post = build_post(record, source, round_number) if isinstance(record, SourceRow) else record
        if isinstance(post, SkippedRow):
            report.skip(post.reason)
        else:
            yield post


def _flush_briefly(producer: KafkaProducer) -> None:
    try:
        producer.flush(timeout=INTERRUPTED_FLUSH_SECONDS)
    except KafkaTimeoutError:
        logger.warning("posts still in flight after %g s: not waiting", INTERRUPTED_FLUSH_SECONDS)
    except KeyboardInterrupt:
        logger.warning("interrupted again: not waiting for the posts in flight")
