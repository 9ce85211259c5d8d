"""The stream loop: poll → validate → batch → cache → model → store → commit.

Offsets are committed only after the batch's dead letters were delivered and its rows
committed to PostgreSQL, so a crash at any point re-delivers rather than loses; the table's
primary key makes re-delivery harmless. While the database is unavailable the partitions are
paused (the consumer keeps polling, so it stays in the group) and the batch is retried.

Three stages overlap, each on a thread of its own: the loop polls, decodes and cleans batch
n+2 while batch n+1 is classified (cache lookup and onnxruntime, which releases the GIL) and
batch n is written to the database (psycopg2 releases the GIL while it waits for the server).
With SENTIMENT_INFERENCE_THREAD off, the loop classifies each batch itself before reading on,
and the writer threads run their Python while the loop's model call lets the GIL go, not
beside the loop's own Python (consumer.gate).
Batches are still stored and committed strictly in order: the next write starts only after
the previous batch was stored and its offsets committed, and every database call goes through
that one writer thread. Neither the offset commit nor the cache write of a stored batch is
waited for: the commit is asynchronous (synchronous at shutdown) and the cache write runs on
a thread of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import NamedTuple

import numpy as np
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata

from consumer.batch import (
    RESULT_COLUMNS,
    Accepted,
    DeadLetter,
    Record,
    Verdict,
    dead_letter_headers,
    dead_letter_rows,
    dead_letter_value,
    first_per_post_id,
    next_offsets,
    result_columns,
    split_batch,
    unique_texts,
    where,
)
from consumer.classify import CachedClassifier
from consumer.gate import PythonGate
from consumer.metrics import Metrics
from consumer.settings import ConsumerSettings
from consumer.store import ResultStore, StoreUnavailable
from schemas.messages import ClassificationResult
from textclean import CleaningConfig, text_cleaner

logger = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 200
MAX_QUEUED_CACHE_WRITES = 4
# Batches read but not yet stored: one being written, one classified or being classified, and
# one more so that the loop can decode while both of those run.
MAX_UNSTORED = 3
# Paused partitions are not fetched, so fetches bring no high-water marks: while the loop backs
# off, the broker is asked for the end offsets this often, and the lag shows posts piling up.
LAG_REFRESH_SECONDS = 15.0


class Classified(NamedTuple):
    """What the inference thread adds to a decoded batch."""

    by_text: dict[str, Verdict]  # one per distinct cleaned text
    result_columns: list[list[object]]
    results: list[ClassificationResult]
    processed_at: datetime


@dataclass
class PreparedBatch:
    """A decoded batch, classified (or being classified), waiting to be stored."""

    envelopes: list[Record]
    accepted: list[Accepted]
    dead_letters: list[DeadLetter]
    offsets: dict[tuple[str, int], int]
    classified: Future[Classified]
    dead_letters_published: bool = False
    results_published: bool = False
    attempts: int = 0


class _RevocationListener(ConsumerRebalanceListener):
    """kafka-python 3 calls these on its network thread while the loop waits in poll(), so
    they never run beside the loop's own code. They must not call a blocking consumer method
    (commit(), position()): from that thread it raises. They assume eager rebalancing (every
    partition revoked, then the new set assigned), kafka-python's default assignors'."""

    def __init__(self, service: StreamService) -> None:
        self._service = service

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self._service.partitions_revoked(revoked)

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self._service.partitions_assigned(assigned)
        logger.info(
            "partitions assigned: %s", sorted(f"{t.topic}[{t.partition}]" for t in assigned)
        )


class StreamService:
    def __init__(
        self,
        settings: ConsumerSettings,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        classifier: CachedClassifier,
        cleaning: CleaningConfig,
        store: ResultStore,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._consumer = consumer
        self._producer = producer
        self._classifier = classifier
        self._cleaning = cleaning
        self._store = store
        self._metrics = metrics
        self._stop = threading.Event()
        # Batches not yet stored, oldest first (at most MAX_UNSTORED): the first one's write
        # may be in flight on the writer thread, the others are classified in order on the
        # inference thread.
        self._unstored: list[PreparedBatch] = []
        self._write: Future[int] | None = None
        self._inference = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
            if settings.inference_thread
            else None
        )
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
        # Cache writes wait for Redis on a thread of their own, behind no database write. A few
        # may queue; beyond that (Redis slow but not failing) a batch's write is skipped.
        self._cache_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-writer")
        self._cache_write_slots = threading.BoundedSemaphore(MAX_QUEUED_CACHE_WRITES)
        # Without the inference thread and while batches come full, the loop closes it while
        # reading, decoding and cleaning a batch, and opens it for the model; the writers wait
        # at it before their Python.
        self._gate = PythonGate()
        self._last_batch_full = False
        self._generation = 0
        # Per owned partition, where the group would restart it: the last offset committed
        # here, or else the first offset read since it was assigned (= the group's commit).
        self._restart_at: dict[tuple[str, int], int] = {}
        self._rewind: dict[tuple[str, int], int] = {}
        self._paused = False
        self._lag_refreshed = 0.0
        self.kafka_connected = False

    def subscribe(self) -> None:
        self._consumer.subscribe([self._settings.posts_topic], listener=_RevocationListener(self))

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Process batches until stop(); then store what is classified within the timeout."""
        try:
            while not self._stop.is_set():
                self.step()
            self._drain()
        finally:
            if self._inference is not None:
                self._inference.shutdown(wait=True)
            self._writer.shutdown(wait=True)
            self._cache_writer.shutdown(wait=True)

    def step(self) -> None:
        """Finish what is done (a write, a classification), then read the next batch.

        With MAX_UNSTORED batches on hand, wait for the oldest instead of reading more.
        """
        write_due = self._write is not None and (self._full or self._write.done())
        if write_due and not self._finish_write():
            self._back_off()
            return
        start_due = self._unstored and (self._full or self._unstored[0].classified.done())
        if self._write is None and start_due and not self._start_write():
            self._back_off()
            return
        if not self._full:
            # Gated only while batches come full: with the loop waiting for posts, a closed
            # gate held each batch's write until the next batch's model call (at 1,000 posts/s
            # without the inference thread, p50 produce-to-stored 42 -> 69 ms).
            gated = self._inference is None and self._last_batch_full
            with self._gate.closed() if gated else nullcontext():
                envelopes = self._collect_batch()
                if envelopes:
                    self._unstored.append(self._prepare(envelopes))
            self._last_batch_full = len(envelopes) >= self._settings.batch_max_size

    @property
    def _full(self) -> bool:
        return len(self._unstored) >= MAX_UNSTORED

    def partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        # kafka-python 3 keeps the fetch position (and the paused flag) of a partition that is
        # revoked and assigned straight back. Rewind it to where the group restarts it, so the
        # work abandoned at the revocation is re-read rather than skipped (and later covered
        # by a commit: lost), and resume it, since the batch it was paused for is gone.
        for tp in assigned:
            offset = self._rewind.get((tp.topic, tp.partition))
            if offset is not None:
                logger.info("rewinding %s[%d] to %d", tp.topic, tp.partition, offset)
                self._consumer.seek(tp, offset)
        self._rewind.clear()
        paused = self._consumer.paused()
        if paused:
            self._consumer.resume(*paused)
        self._metrics.assigned_partitions.set(len(assigned))

    def partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        """Abandon uncommitted work: the partitions' next owner re-reads it from the commit."""
        self._generation += 1
        for tp in revoked:
            key = (tp.topic, tp.partition)
            if key in self._restart_at:
                self._rewind[key] = self._restart_at.pop(key)
        if self._unstored:
            # A write in flight still finishes on the writer thread; its offsets are simply
            # not committed, and the primary key absorbs the re-read.
            logger.warning(
                "rebalance: abandoning %d uncommitted messages (will be re-read)",
                sum(len(batch.envelopes) for batch in self._unstored),
            )
            self._unstored, self._write = [], None
        self._paused = False
        self._metrics.consumer_lag.clear()
        self._metrics.assigned_partitions.set(0)
        logger.info("partitions revoked: %s", sorted(f"{t.topic}[{t.partition}]" for t in revoked))

    # --- the batch, in the order the data flows -----------------------------------------

    def _collect_batch(self) -> list[Record]:
        """Poll until the batch is full or the wait since its first message is over."""
        settings = self._settings
        envelopes: list[Record] = []
        generation = self._generation
        deadline: float | None = None
        while not self._stop.is_set():
            now = time.monotonic()
            if deadline is None:
                # With a batch in flight, come back soon to store or commit it, not idle.
                timeout_ms = 5 if self._unstored else POLL_TIMEOUT_MS
            else:
                timeout_ms = max(0, int((deadline - now) * 1000))
            try:
                polled = self._consumer.poll(
                    timeout_ms=timeout_ms, max_records=settings.batch_max_size - len(envelopes)
                )
            except KafkaError as error:
                # Broker unreachable: keep what this batch already holds (the position is past
                # it, so dropping it would skip those messages) and poll again later.
                self._poll_failed(error)
                if generation != self._generation:  # revoked meanwhile: others re-read them
                    envelopes = []
                break
            self.kafka_connected = True
            if generation != self._generation:  # a rebalance happened during poll()
                envelopes, generation, deadline = [], self._generation, None
            for tp, records in polled.items():
                if records:
                    self._restart_at.setdefault((tp.topic, tp.partition), records[0].offset)
                envelopes.extend(records)
            if envelopes and deadline is None:
                deadline = time.monotonic() + self._wait_left(envelopes)
            if not envelopes:
                return []
            if len(envelopes) >= settings.batch_max_size or time.monotonic() >= deadline:
                break
        return envelopes

    def _wait_left(self, envelopes: list[Record]) -> float:
        """Seconds the batch may still wait for more posts.

        The wait limit counts from when the oldest post was produced, not from when the loop
        got to it: posts that queued while the previous batch was classified have waited
        already, and waiting the full limit again made every post wait about two batches.
        A producer clock ahead of ours gives the full wait; one behind, none.
        """
        produced = min(envelope.timestamp for envelope in envelopes) / 1000
        waited = max(0.0, time.time() - produced)
        return max(0.0, self._settings.batch_max_wait_ms / 1000 - waited)

    def _prepare(self, envelopes: list[Record]) -> PreparedBatch:
        """Decode and clean here; classify on the inference thread."""
        metrics = self._metrics
        metrics.posts_consumed.inc(len(envelopes))
        metrics.batch_size.observe(len(envelopes))
        started = time.perf_counter()
        accepted, dead_letters = split_batch(envelopes, text_cleaner(self._cleaning))
        accepted = first_per_post_id(accepted)
        metrics.stage_duration.labels("decode").observe(time.perf_counter() - started)
        for letter in dead_letters:
            metrics.posts_failed.labels(letter.reason.value).inc()
            logger.warning(
                "refused %s: %s (%s)", where(letter.envelope), letter.reason.value, letter.detail
            )

        return PreparedBatch(
            envelopes=envelopes,
            accepted=accepted,
            dead_letters=dead_letters,
            offsets=next_offsets(envelopes),
            classified=self._classify_soon(accepted),
        )

    def _classify_soon(self, accepted: list[Accepted]) -> Future[Classified]:
        """On the inference thread; without one, here and now (a future already done)."""
        if self._inference is not None:
            return self._inference.submit(self._classify, accepted)
        done: Future[Classified] = Future()
        done.set_result(self._classify(accepted))
        return done

    def _classify(self, accepted: list[Accepted]) -> Classified:
        by_text = self._classifier.classify(
            unique_texts(accepted), remember=False, around_run=self._gate.opened
        )
        processed_at = datetime.now(UTC)
        version = self._classifier.version
        results = []
        if self._settings.results_topic:
            verdicts = [by_text[item.cleaned_text] for item in accepted]
            results = [
                ClassificationResult(
                    post_id=item.post.post_id,
                    label=verdict.prediction.label,
                    positive_probability=verdict.prediction.positive_probability,
                    confidence=verdict.prediction.confidence,
                    model_version=version,
                    processed_at=processed_at,
                    cached=verdict.cached,
                )
                for item, verdict in zip(accepted, verdicts, strict=True)
            ]
        columns = result_columns(accepted, by_text, version, processed_at)
        return Classified(by_text, columns, results, processed_at)

    def _start_write(self) -> bool:
        """Dead letters → (results topic) → database write on the writer thread.

        False: the dead letters or results could not be published; retry later.
        """
        batch = self._unstored[0]
        classified = batch.classified.result()  # re-raises what failed on the inference thread
        batch.attempts += 1
        try:
            self._publish_dead_letters(batch, classified.processed_at)
            self._publish_results(batch, classified.results)
        except StoreUnavailable as error:
            self._metrics.database_errors.inc()
            logger.warning("dead letters not checked (attempt %d): %s", batch.attempts, error)
            return False
        except KafkaError as error:
            self._metrics.kafka_errors.labels("produce").inc()
            logger.warning("dead letters not delivered (attempt %d): %s", batch.attempts, error)
            return False
        self._write = self._writer.submit(self._store_rows, batch.dead_letters, classified)
        return True

    def _store_rows(self, dead_letters: list[DeadLetter], classified: Classified) -> int:
        self._gate.wait()
        started = time.perf_counter()
        inserted = self._store.write_columns(
            classified.result_columns, dead_letter_rows(dead_letters, classified.processed_at)
        )
        self._metrics.stage_duration.labels("database").observe(time.perf_counter() - started)
        return inserted

    def _finish_write(self) -> bool:
        """Wait for the write in flight; commit its offsets if it is stored, else False."""
        assert self._write is not None
        write, batch = self._write, self._unstored[0]
        self._write = None
        try:
            inserted = write.result()
        except StoreUnavailable as error:
            self._metrics.database_errors.inc()
            logger.warning("batch not stored (attempt %d): %s", batch.attempts, error)
            return False
        self._unstored.pop(0)
        self._commit(batch.offsets)
        classified = batch.classified.result()
        self._queue_cache_write(classified.by_text)
        self._record_success(batch, classified, inserted)
        self._resume()
        return True

    def _queue_cache_write(self, verdicts: dict[str, Verdict]) -> None:
        if self._cache_write_slots.acquire(blocking=False):
            self._cache_writer.submit(self._remember, verdicts)
        else:
            self._metrics.cache_errors.inc()
            logger.warning("cache writes %d batches behind: skipping one", MAX_QUEUED_CACHE_WRITES)

    def _remember(self, verdicts: dict[str, Verdict]) -> None:
        try:
            self._gate.wait()
            self._classifier.remember(verdicts)
        except Exception:  # a fire-and-forget task: log what would otherwise vanish
            logger.exception("cache write failed")
        finally:
            self._cache_write_slots.release()

    def _publish_dead_letters(self, batch: PreparedBatch, failed_at: datetime) -> None:
        if batch.dead_letters_published or not batch.dead_letters:
            return
        started = time.perf_counter()
        positions = [
            (d.envelope.topic, d.envelope.partition, d.envelope.offset) for d in batch.dead_letters
        ]
        already = self._writer.submit(self._store.known_dead_letters, positions).result()
        futures = []
        for letter in batch.dead_letters:
            envelope = letter.envelope
            if (envelope.topic, envelope.partition, envelope.offset) in already:
                continue
            futures.append(
                self._producer.send(
                    self._settings.dead_letter_topic,
                    value=dead_letter_value(letter),
                    key=envelope.key,
                    headers=dead_letter_headers(letter, failed_at),
                )
            )
        self._wait_for(futures)
        batch.dead_letters_published = True
        for letter in batch.dead_letters:
            self._metrics.dead_letters.labels(letter.reason.value).inc()
        self._metrics.stage_duration.labels("dead_letter").observe(time.perf_counter() - started)

    def _publish_results(self, batch: PreparedBatch, results: list[ClassificationResult]) -> None:
        topic = self._settings.results_topic
        if batch.results_published or not topic or not results:
            return
        futures = [
            self._producer.send(
                topic, value=result.model_dump_json().encode(), key=result.post_id.encode()
            )
            for result in results
        ]
        self._wait_for(futures)
        batch.results_published = True

    def _wait_for(self, futures: list[FutureRecordMetadata]) -> None:
        self._producer.flush(timeout=10)
        for future in futures:
            future.get(timeout=10)

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit the offsets of a stored batch.

        While running, asynchronously: the loop goes on to the next batch instead of waiting a
        broker round trip per batch. A commit that fails is only counted: the rows are stored,
        and the next batch's commit (or the synchronous one at shutdown) covers its offsets;
        if the partition changes owner first, the new owner re-reads rows the table skips.
        """
        started = time.perf_counter()
        commit = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for (topic, partition), offset in offsets.items()
        }
        try:
            if self.stopping:
                self._consumer.commit(commit)
            else:
                self._consumer.commit_async(commit, callback=self._commit_done)
            self._restart_at.update(offsets)
        except (CommitFailedError, KafkaError) as error:
            self._commit_failed(error)
        self._metrics.stage_duration.labels("commit").observe(time.perf_counter() - started)

    def _commit_done(self, offsets: object, response: object) -> None:
        if isinstance(response, Exception):
            self._commit_failed(response)

    def _commit_failed(self, error: Exception) -> None:
        # The rows are stored; whoever owns the partitions next re-reads and skips them.
        self._metrics.kafka_errors.labels("commit").inc()
        logger.warning("offset commit failed after the rows were stored: %s", error)

    def _record_success(self, batch: PreparedBatch, classified: Classified, inserted: int) -> None:
        metrics = self._metrics
        now = time.time()
        metrics.results_stored.inc(inserted)
        metrics.duplicates_skipped.inc(len(batch.accepted) - inserted)
        results = dict(zip(RESULT_COLUMNS, classified.result_columns, strict=True))
        for label, count in Counter(results["label"]).items():
            metrics.posts_classified.labels(label).inc(count)
        metrics.confidence.observe_many(np.array(results["confidence"]))
        produced_ms = np.fromiter(
            map(attrgetter("envelope.timestamp"), batch.accepted), float, len(batch.accepted)
        )
        metrics.end_to_end_latency.observe_many(np.maximum(0.0, now - produced_ms / 1000))
        metrics.last_batch.set(now)
        self._update_lag()
        logger.debug(
            "batch stored",
            extra={
                "messages": len(batch.envelopes),
                "stored": inserted,
                "dead_letters": len(batch.dead_letters),
            },
        )

    def _update_lag(self, end_offsets: dict[TopicPartition, int] | None = None) -> None:
        for tp in self._consumer.assignment():
            end = self._consumer.highwater(tp) if end_offsets is None else end_offsets.get(tp)
            done = self._restart_at.get((tp.topic, tp.partition))
            if end is not None and done is not None:
                self._metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(
                    max(0, end - done)
                )

    # --- failures and shutdown -----------------------------------------------------------

    def _back_off(self) -> None:
        """Pause fetching and keep polling (to stay in the group) until the retry is due."""
        if not self._paused and self._consumer.assignment():
            self._consumer.pause(*self._consumer.assignment())
            self._paused = True
        attempts = self._unstored[0].attempts if self._unstored else 1
        delay = min(self._settings.database_retry_max_seconds, 0.1 * 2 ** min(attempts, 16))
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and self._unstored and not self.stopping:
            try:
                polled = self._consumer.poll(timeout_ms=min(POLL_TIMEOUT_MS, int(delay * 1000)))
            except KafkaError as error:
                self._poll_failed(error)
                continue
            self.kafka_connected = True
            self._unread(polled)
            self._refresh_lag_from_broker()

    def _refresh_lag_from_broker(self) -> None:
        if time.monotonic() < self._lag_refreshed + LAG_REFRESH_SECONDS:
            return
        self._lag_refreshed = time.monotonic()
        assigned = list(self._consumer.assignment())
        try:
            end_offsets = self._consumer.end_offsets(assigned, timeout_ms=1000) if assigned else {}
        except KafkaError as error:
            logger.debug("end offsets unavailable: %s", error)
            return
        self._update_lag(end_offsets)

    def _unread(self, polled: dict[TopicPartition, list[Record]]) -> None:
        """Give back records that a poll made only to stay in the group returned anyway.

        Paused partitions return none, but a rebalance inside the poll can assign and resume a
        partition and fetch from it in the same call: seek back so the records are read again.
        """
        for tp, records in polled.items():
            if records:
                logger.info("rewinding %s[%d] to %d", tp.topic, tp.partition, records[0].offset)
                self._consumer.seek(tp, records[0].offset)

    def _poll_failed(self, error: KafkaError) -> None:
        """kafka-python 3 raises from poll() while the broker is unreachable; wait and retry."""
        self.kafka_connected = False
        self._metrics.kafka_errors.labels("poll").inc()
        logger.warning("poll failed (broker unreachable?): %s", error)
        time.sleep(0.5)

    def _resume(self) -> None:
        if self._paused:
            paused = self._consumer.paused()
            if paused:
                self._consumer.resume(*paused)
            self._paused = False

    def _drain(self) -> None:
        deadline = time.monotonic() + self._settings.shutdown_timeout_seconds
        while self._unstored and time.monotonic() < deadline:
            if self._write is None and not self._start_write():
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
                continue
            if self._write is not None:
                # No longer than the deadline: a write may wait up to the statement timeout.
                wait([self._write], timeout=max(0.0, deadline - time.monotonic()))
                if not self._write.done():
                    break
                if not self._finish_write():
                    time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        if self._unstored:
            logger.warning(
                "shutting down with %d uncommitted messages; they will be re-read",
                sum(len(batch.envelopes) for batch in self._unstored),
            )
        if self._restart_at:
            # Asynchronous commits may still be in flight: commit each owned partition's
            # stored position once more, and wait for the answer.
            self._commit(dict(self._restart_at))
