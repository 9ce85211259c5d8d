"""Service-free regression tests for the consumer bugs that fault injection and reviews found
(fakes for Kafka and the store: pure unit tests of the loop)."""

from __future__ import annotations

import json
import threading
import time
from collections import namedtuple
from concurrent.futures import Future
from unittest.mock import MagicMock

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry

from consumer.batch import Envelope, Verdict, split_batch
from consumer.metrics import Metrics
from consumer.service import MAX_QUEUED_CACHE_WRITES, StreamService
from consumer.settings import ConsumerSettings
from inference import Prediction
from schemas.messages import DeadLetterReason
from textclean import CleaningConfig

Message = namedtuple("Message", "topic partition offset timestamp key value")
TP = TopicPartition("posts", 0)


def _envelope(value: bytes) -> Envelope:
    return Envelope("posts", 0, 1, 0, None, value)


@pytest.mark.parametrize(
    "post",
    [
        {"post_id": "a", "text": "x\u0000y"},
        {"post_id": "a", "text": "fine", "author": "b\u0000"},
        {"post_id": "a", "text": "fine", "metadata": {"k": "\u0000"}},
    ],
)
def test_posts_holding_nul_are_dead_letters_not_crashes(post: dict[str, object]) -> None:
    accepted, rejected = split_batch([_envelope(json.dumps(post).encode())], str)
    assert accepted == []
    assert [letter.reason for letter in rejected] == [DeadLetterReason.SCHEMA_VIOLATION]
    assert "NUL" in rejected[0].detail


@pytest.mark.parametrize(
    "value",
    [b'{"post_id": "a", "text": "x\x00y"}', b'{"post_id": "a",\x00 "text": "x"}'],
)
def test_a_raw_nul_byte_is_malformed_json(value: bytes) -> None:
    # split_batch looks for NUL in accepted posts only as the escape \u0000: a raw one must
    # never get that far.
    accepted, rejected = split_batch([_envelope(value)], str)
    assert accepted == []
    assert [letter.reason for letter in rejected] == [DeadLetterReason.MALFORMED_JSON]


class FakeConsumer:
    """Just enough of KafkaConsumer: poll returns queued results (or raises them)."""

    def __init__(self) -> None:
        self.results: list[object] = []
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.paused_partitions: set[TopicPartition] = set()
        self.end_offset = 0

    def poll(self, timeout_ms: int = 0, max_records: int = 0) -> dict:  # type: ignore[type-arg]
        result = self.results.pop(0) if self.results else {}
        if isinstance(result, Exception):
            raise result
        return result  # type: ignore[return-value]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused_partitions -= set(partitions)

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused_partitions |= set(partitions)

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    def end_offsets(self, partitions: list[TopicPartition], timeout_ms: int) -> dict:  # type: ignore[type-arg]
        return {tp: self.end_offset for tp in partitions}


def _service(consumer: FakeConsumer) -> StreamService:
    settings = ConsumerSettings(batch_max_size=10, batch_max_wait_ms=0, posts_topic="posts")
    metrics = Metrics(CollectorRegistry())
    return StreamService(
        settings, consumer, MagicMock(), MagicMock(), MagicMock(), MagicMock(), metrics
    )  # type: ignore[arg-type]


def _records(*offsets: int, age_s: float = 0.0) -> dict[TopicPartition, list[Message]]:
    produced_ms = int((time.time() - age_s) * 1000)
    return {TP: [Message("posts", 0, o, produced_ms, None, b"{}") for o in offsets]}


def test_a_partition_assigned_straight_back_is_rewound_to_the_abandoned_work() -> None:
    consumer = FakeConsumer()
    service = _service(consumer)
    consumer.results = [_records(40, 41, 42)]
    assert [e.offset for e in service._collect_batch()] == [40, 41, 42]
    consumer.pause(TP)  # as while the database was down
    service.partitions_revoked([TP])
    service.partitions_assigned([TP])
    assert consumer.seeks == [(TP, 40)]  # not skipped: read again from the first offset
    assert consumer.paused() == set()


def test_after_a_commit_the_rewind_goes_to_the_commit() -> None:
    consumer = FakeConsumer()
    service = _service(consumer)
    service._consumer.commit_async = MagicMock()  # type: ignore[attr-defined]
    consumer.results = [_records(40, 41)]
    service._collect_batch()
    service._commit({("posts", 0): 42})
    service.partitions_revoked([TP])
    service.partitions_assigned([TP])
    assert consumer.seeks == [(TP, 42)]


def test_commits_are_asynchronous_while_running_and_waited_for_at_shutdown() -> None:
    consumer = FakeConsumer()
    service = _service(consumer)
    service._consumer.commit = MagicMock()  # type: ignore[attr-defined]
    service._consumer.commit_async = MagicMock()  # type: ignore[attr-defined]
    service._commit({("posts", 0): 42})
    assert service._consumer.commit_async.call_count == 1  # type: ignore[attr-defined]
    assert service._consumer.commit.call_count == 0  # type: ignore[attr-defined]

    service.stop()
    service._drain()  # nothing unstored: one last commit of every owned position, waited for
    committed = service._consumer.commit.call_args.args[0]  # type: ignore[attr-defined]
    assert {(tp.partition, meta.offset) for tp, meta in committed.items()} == {(0, 42)}


def test_a_failed_asynchronous_commit_is_counted() -> None:
    service = _service(FakeConsumer())
    service._commit_done({}, KafkaConnectionError("gone"))
    assert service._metrics.kafka_errors.labels("commit")._value.get() == 1


def test_a_new_partition_keeps_the_group_position() -> None:
    consumer = FakeConsumer()
    service = _service(consumer)
    service.partitions_assigned([TP])
    assert consumer.seeks == []


def test_records_that_a_back_off_poll_returns_are_read_again() -> None:
    # While the database is down the loop polls paused partitions only to stay in the group;
    # a rebalance inside such a poll can resume a partition and fetch from it in the same call.
    consumer = FakeConsumer()
    service = _service(consumer)
    service._settings = ConsumerSettings(database_retry_max_seconds=0.05)
    service._unstored = [MagicMock(attempts=1)]
    consumer.results = [_records(10, 11, 12)]
    service._back_off()
    assert consumer.seeks == [(TP, 10)]  # not dropped: the next batch starts at 10


def test_the_lag_shows_posts_piling_up_while_the_loop_backs_off() -> None:
    # Paused partitions bring no high-water marks; the stall alert needs the lag to grow.
    consumer = FakeConsumer()
    service = _service(consumer)
    service._settings = ConsumerSettings(database_retry_max_seconds=0.05)
    service._unstored = [MagicMock(attempts=1)]
    service._restart_at[("posts", 0)] = 100
    consumer.end_offset = 500
    service._back_off()
    assert service._metrics.consumer_lag.labels("posts", "0")._value.get() == 400


def test_the_back_off_survives_a_very_long_database_outage() -> None:
    service = _service(FakeConsumer())
    service._settings = ConsumerSettings(database_retry_max_seconds=0.01)
    service._unstored = [MagicMock(attempts=5000)]  # hours of retries
    started = time.monotonic()
    service._back_off()
    assert time.monotonic() - started < 1


def test_shutdown_does_not_wait_past_its_deadline_for_a_hung_write() -> None:
    service = _service(FakeConsumer())
    service._settings = ConsumerSettings(shutdown_timeout_seconds=0.2)
    service._unstored = [MagicMock(attempts=1)]
    service._write = Future()  # a database that does not answer
    started = time.monotonic()
    service._drain()
    assert time.monotonic() - started < 2
    assert service._unstored  # not committed: re-read by the next owner


def test_an_unreachable_broker_does_not_end_the_loop_nor_drop_the_batch() -> None:
    consumer = FakeConsumer()
    service = _service(consumer)
    service._settings = ConsumerSettings(batch_max_size=10, batch_max_wait_ms=60_000)
    consumer.results = [_records(7), KafkaConnectionError("socket disconnected")]
    assert [e.offset for e in service._collect_batch()] == [7]
    assert service.kafka_connected is False
    consumer.results = [KafkaConnectionError("socket disconnected")]
    assert service._collect_batch() == []


def test_cache_writes_queue_a_few_batches_then_skip_and_count() -> None:
    service = _service(FakeConsumer())
    release = threading.Event()
    service._classifier.remember.side_effect = lambda verdicts: release.wait(10)  # type: ignore[attr-defined]
    for _ in range(MAX_QUEUED_CACHE_WRITES + 2):
        service._queue_cache_write({})
    assert service._metrics.cache_errors._value.get() == 2
    release.set()
    service._cache_writer.shutdown(wait=True)
    assert service._classifier.remember.call_count == MAX_QUEUED_CACHE_WRITES  # type: ignore[attr-defined]


def test_the_batch_wait_counts_from_when_the_oldest_post_was_produced() -> None:
    consumer = FakeConsumer()
    service = _service(consumer)
    service._settings = ConsumerSettings(batch_max_size=10, batch_max_wait_ms=60_000)
    # Posts that queued for longer than the wait: the batch closes with what is there.
    consumer.results = [_records(1, 2, age_s=61)]
    started = time.monotonic()
    assert [e.offset for e in service._collect_batch()] == [1, 2]
    assert time.monotonic() - started < 1
    # Fresh posts: it waits for more (here: polls again and gets the next ones).
    consumer.results = [_records(3), _records(4, 5, 6, 7, 8, 9, 10, 11, 12)]
    assert len(service._collect_batch()) == 10


def _pipelined_service(
    consumer: FakeConsumer, **settings: object
) -> tuple[StreamService, threading.Event]:
    """A service whose classifier answers "positive" once the returned event is set."""
    service = StreamService(
        ConsumerSettings(batch_max_size=2, batch_max_wait_ms=0, posts_topic="posts", **settings),
        consumer,  # type: ignore[arg-type]
        MagicMock(),
        MagicMock(),
        CleaningConfig(),
        MagicMock(),
        Metrics(CollectorRegistry()),
    )
    release = threading.Event()
    verdict = Verdict(Prediction("positive", 0.9, 0.9), cached=False)

    def classify(texts: list[str], remember: bool, around_run: object) -> dict[str, Verdict]:
        release.wait(10)
        return dict.fromkeys(texts, verdict)

    service._classifier.classify.side_effect = classify  # type: ignore[attr-defined]
    service._classifier.version = "v1"  # type: ignore[attr-defined]
    service._store.write_columns.side_effect = lambda columns, dead_letters: len(columns[0])  # type: ignore[attr-defined]
    consumer.commit_async = MagicMock()  # type: ignore[attr-defined]
    return service, release


def _posts(*offsets: int) -> dict[TopicPartition, list[Message]]:
    now_ms = int(time.time() * 1000)
    return {
        TP: [
            Message(
                "posts",
                0,
                o,
                now_ms,
                None,
                json.dumps({"post_id": f"p{o}", "text": f"day {o}"}).encode(),
            )
            for o in offsets
        ]
    }


def test_the_next_batch_is_decoded_while_one_is_classified_and_stored_in_order() -> None:
    consumer = FakeConsumer()
    service, release = _pipelined_service(consumer)
    consumer.results = [_posts(1, 2), _posts(3, 4)]
    service.step()
    service.step()
    # The first batch is still being classified, and the loop has read the second meanwhile.
    assert [len(batch.envelopes) for batch in service._unstored] == [2, 2]
    assert not service._unstored[0].classified.done()
    assert service._store.write_columns.call_count == 0  # type: ignore[attr-defined]

    release.set()
    deadline = time.monotonic() + 10
    while service._unstored and time.monotonic() < deadline:
        service.step()
    stored = [
        call.args[0][0]  # the post ids
        for call in service._store.write_columns.call_args_list  # type: ignore[attr-defined]
    ]
    assert stored == [["p1", "p2"], ["p3", "p4"]]
    committed = [
        {tp.partition: meta.offset for tp, meta in call.args[0].items()}
        for call in consumer.commit_async.call_args_list  # type: ignore[attr-defined]
    ]
    assert committed == [{0: 3}, {0: 5}]


def test_without_the_inference_thread_a_batch_is_classified_before_the_next_is_read() -> None:
    consumer = FakeConsumer()
    service, release = _pipelined_service(consumer, inference_thread=False)
    release.set()
    consumer.results = [_posts(1, 2)]
    service.step()
    assert service._unstored[0].classified.done()


def test_without_the_inference_thread_writers_are_held_only_while_batches_come_full() -> None:
    consumer = FakeConsumer()
    service, release = _pipelined_service(consumer, inference_thread=False)
    release.set()
    gate_open_during_poll: list[bool] = []
    poll = consumer.poll

    def watched_poll(timeout_ms: int = 0, max_records: int = 0) -> dict:  # type: ignore[type-arg]
        gate_open_during_poll.append(service._gate.is_open)
        return poll(timeout_ms, max_records)

    consumer.poll = watched_poll  # type: ignore[method-assign]
    consumer.results = [_posts(1), _posts(2, 3), _posts(4, 5), _posts(6)]
    for _ in range(4):
        service.step()
    # Batches of at most 2: the first (1 post) leaves the gate open for the next poll; after a
    # full one (2 posts) the next poll runs with the writers held; after 1 post, open again.
    assert gate_open_during_poll == [True, True, False, False]
