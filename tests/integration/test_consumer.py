"""The streaming service end to end: real consumer processes, broker, Redis and PostgreSQL."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from consumer.processes import ConsumerProcess
from devstack import EmbeddedStack, StackEndpoints
from inference import ModelBundle, SentimentModel
from schemas import ClassificationResult
from tests.integration.streaming import (
    StreamSetup,
    new_marker,
    post_json,
    query,
    read_all,
    stored_count,
    wait_for,
)


@pytest.fixture
def setup(
    stack_endpoints: StackEndpoints,
    topic_factory: Callable[..., str],
    fresh_database: str,
    group_id: str,
    bundle_path: Path,
    tmp_path: Path,
) -> StreamSetup:
    return StreamSetup(
        endpoints=stack_endpoints,
        posts_topic=topic_factory(partitions=4),
        dead_letter_topic=topic_factory(partitions=1),
        dsn=fresh_database,
        group_id=group_id,
        bundle_path=bundle_path,
        logs=tmp_path / "logs",
        marker=new_marker(),
    )


@pytest.fixture
def running() -> Iterator[list[ConsumerProcess]]:
    """Consumers a test starts; all are stopped at the end, whatever happened."""
    processes: list[ConsumerProcess] = []
    yield processes
    for process in processes:
        process.kill()


def start(
    setup: StreamSetup, running: list[ConsumerProcess], name: str = "c", **settings: object
) -> ConsumerProcess:
    process = setup.consumer(name, **settings).start()
    running.append(process)
    process.wait_ready(timeout=60)
    return process


WORDS = ["love this", "hate this", "great game", "awful service", "the bus leaves at noon"]
# With the inference thread (the default) and without it (docker-compose and Kubernetes, where
# the loop classifies, and the writer threads wait for its model calls: consumer.gate).
INFERENCE_THREAD = pytest.mark.parametrize(
    "inference_thread", [True, False], ids=["inference-thread", "one-loop"]
)


@INFERENCE_THREAD
def test_every_valid_post_is_stored_once_and_bad_ones_are_dead_lettered(
    setup: StreamSetup, running: list[ConsumerProcess], bundle_path: Path, inference_thread: bool
) -> None:
    good = [(f"p-{i}", setup.text(f"{WORDS[i % 5]} {i}")) for i in range(300)]
    bad = [
        b"{not json",
        b"\xff\xfe\xfa binary",
        post_json("empty-1", ""),
        post_json("huge-1", "x" * 6000),
        json.dumps({"text": "no id"}).encode(),
        json.dumps({"post_id": "typed", "text": 5}).encode(),
        b'{"post_id": "utf", "text": "caf\xe9"}',
        # What the JSON parser takes but PostgreSQL would refuse (jsonb, timestamptz, text).
        b'{"post_id": "nan", "text": "fine", "metadata": {"score": NaN}}',
        json.dumps(
            {"post_id": "tz", "text": "fine", "created_at": "2026-01-01T00:00+20:00"}
        ).encode(),
        b'{"post_id": "nul", "text": "fine", "metadata": {"\\u0000": [1]}}',
    ]
    keyed = [(pid.encode(), post_json(pid, text)) for pid, text in good]
    # Keyed by post id, as the producer does: a repeated id lands on the same partition,
    # behind the first one, so the first version is the one stored.
    keyed.append((b"p-0", post_json("p-0", "the same id again, different text")))
    setup.publish(keyed[:150] + bad + keyed[150:])

    start(setup, running, inference_thread=inference_thread)
    wait_for(lambda: stored_count(setup.dsn) == len(good), 60, "all good posts stored")

    rows = dict(query(setup.dsn, "SELECT post_id, label FROM results"))
    model = SentimentModel(ModelBundle.load(bundle_path))
    expected = [p.label for p in model.predict([text for _, text in good])]
    assert [rows[pid] for pid, _ in good] == expected
    assert query(setup.dsn, "SELECT text FROM results WHERE post_id = 'p-0'")[0][0] == good[0][1]

    letters = read_all(setup.endpoints.kafka_bootstrap, setup.dead_letter_topic, len(bad))
    assert sorted(r.value for r in letters) == sorted(bad)
    reasons = sorted(dict(r.headers)["dlq.reason"].decode() for r in letters)
    assert reasons == sorted(
        [
            "malformed_json",
            "invalid_utf8",
            "empty_text",
            "text_too_long",
            "schema_violation",
            "schema_violation",
            "invalid_utf8",
            *["schema_violation"] * 3,
        ]
    )
    assert all(dict(r.headers)["dlq.source_topic"] == setup.posts_topic.encode() for r in letters)
    assert query(setup.dsn, "SELECT count(*) FROM dead_letters")[0][0] == len(bad)


def test_repeated_texts_are_served_from_the_cache(
    setup: StreamSetup, running: list[ConsumerProcess]
) -> None:
    # Numbers spelled in letters ("bc" for 12): the model's cleaning maps every number to one
    # <num> token, and these 50 texts must stay 50 distinct cleaned texts.
    spelled = ["".join("abcdefghij"[int(digit)] for digit in str(i)) for i in range(50)]
    texts = [setup.text(f"{WORDS[i % 5]} {spelled[i]}") for i in range(50)]
    setup.publish(post_json(f"first-{i}", text) for i, text in enumerate(texts))
    consumer = start(setup, running)
    wait_for(lambda: stored_count(setup.dsn) == 50, 60, "first wave stored")
    # Reposts: new ids, same texts. The cache admits a result at its text's second sighting.
    setup.publish(post_json(f"again-{i}", text) for i, text in enumerate(texts))
    wait_for(lambda: stored_count(setup.dsn) == 100, 60, "second wave stored")
    # The cache write runs after the batch is stored: wait for it before the third wave.
    wait_for(
        lambda: consumer.metrics()["sentiment_cache_admissions_total{decision=admitted}"] >= 50,
        30,
        "second wave cached",
    )

    reposts = [post_json(f"third-{i}", text) for i, text in enumerate(texts)]
    reposts.append(post_json("shout", "  " + texts[0].upper() + " "))  # cleaned the same
    setup.publish(reposts)
    wait_for(lambda: stored_count(setup.dsn) == 151, 60, "third wave stored")

    cached = dict(query(setup.dsn, "SELECT post_id, cached FROM results"))
    assert not any(cached[f"first-{i}"] or cached[f"again-{i}"] for i in range(50))
    assert all(cached[f"third-{i}"] for i in range(50))
    assert cached["shout"]  # the key is the cleaned text, not the raw one
    metrics = consumer.metrics()
    # "shout" and third-0 clean to one text, looked up once.
    assert metrics["sentiment_cache_requests_total{result=hit}"] >= 50
    assert metrics["sentiment_cache_admissions_total{decision=first_seen}"] == 50

    request = urllib.request.Request(
        f"{consumer.url}/predict", data=json.dumps({"texts": [texts[1]]}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        (prediction,) = json.load(response)["predictions"]
    assert prediction["cached"] is True
    assert prediction["label"] in {"negative", "neutral", "positive"}


def test_two_consumers_split_the_partitions(
    setup: StreamSetup, running: list[ConsumerProcess]
) -> None:
    first = start(setup, running, "first")
    second = start(setup, running, "second")

    def owned() -> list[float]:
        return [c.metrics()["sentiment_assigned_partitions"] for c in (first, second)]

    wait_for(lambda: sorted(owned()) == [2, 2], 60, "the group to settle on 2 + 2 partitions")
    total = 800
    setup.publish(
        (f"k{i}".encode(), post_json(f"s-{i}", setup.text(f"{WORDS[i % 5]} {i}")))
        for i in range(total)
    )
    wait_for(lambda: stored_count(setup.dsn) == total, 90, "all posts stored")
    consumed = [c.metrics()["sentiment_posts_consumed_total"] for c in (first, second)]
    assert all(count > 0 for count in consumed), consumed
    partitions = query(setup.dsn, "SELECT count(DISTINCT kafka_partition) FROM results")[0][0]
    assert partitions == 4


def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(
    setup: StreamSetup, running: list[ConsumerProcess]
) -> None:
    total = 4000
    setup.publish(post_json(f"k-{i}", setup.text(f"{WORDS[i % 5]} {i}")) for i in range(total))
    victim = setup.consumer("victim", batch_max_size=32).start()
    running.append(victim)
    wait_for(lambda: stored_count(setup.dsn) > 200, 60, "some posts stored")
    victim.kill()
    assert stored_count(setup.dsn) < total, "the kill came too late to prove anything"

    start(setup, running, "survivor")
    wait_for(lambda: stored_count(setup.dsn) == total, 90, "all posts stored after restart")
    time.sleep(1)
    assert stored_count(setup.dsn) == total
    # Re-read posts were skipped by the primary key (this also fails if the key were dropped).
    assert query(setup.dsn, "SELECT count(DISTINCT post_id) FROM results")[0][0] == total


@INFERENCE_THREAD
def test_sigterm_finishes_the_batch_and_exits_zero(
    setup: StreamSetup, running: list[ConsumerProcess], inference_thread: bool
) -> None:
    # Many batches, some always in flight.
    consumer = start(setup, running, batch_max_size=64, inference_thread=inference_thread)
    # Enough posts that the consumer is still at work when it is stopped: 5,000 were all
    # stored before the stop in one run.
    total = 20_000
    setup.publish(post_json(f"t-{i}", setup.text(f"word {i}")) for i in range(total))
    wait_for(lambda: stored_count(setup.dsn) > 0, 60, "work in progress")
    started = time.monotonic()
    assert consumer.stop(timeout=30) == 0
    assert time.monotonic() - started < 25
    assert stored_count(setup.dsn) < total  # stopped mid-stream, with batches in flight
    # The batches in flight were finished rather than left to the next owner...
    assert "uncommitted messages" not in consumer.log_path.read_text()
    # ...and what it stored it committed: per partition, the stored offsets are exactly those
    # below the group's committed offset.
    rows = query(setup.dsn, "SELECT kafka_partition, kafka_offset FROM results")
    committed = committed_offsets(setup)
    assert sum(committed.values()) == len(rows) > 0
    for partition, offset in committed.items():
        stored = sorted(o for p, o in rows if p == partition)
        assert stored == list(range(offset)), partition


def committed_offsets(setup: StreamSetup) -> dict[int, int]:
    """The group's committed offset of each partition of the posts topic (0 if none)."""
    reader = KafkaConsumer(
        bootstrap_servers=setup.endpoints.kafka_bootstrap,
        group_id=setup.group_id,
        enable_auto_commit=False,
    )
    try:
        partitions = reader.partitions_for_topic(setup.posts_topic) or set()
        return {p: reader.committed(TopicPartition(setup.posts_topic, p)) or 0 for p in partitions}
    finally:
        reader.close()


def test_redis_down_mid_run_loses_nothing_and_recovers(
    setup: StreamSetup, running: list[ConsumerProcess], embedded_stack: EmbeddedStack
) -> None:
    consumer = start(setup, running)
    setup.publish(post_json(f"r1-{i}", setup.text(f"{WORDS[i % 5]} {i}")) for i in range(100))
    wait_for(lambda: stored_count(setup.dsn) == 100, 60, "first wave stored")
    embedded_stack.stop_service("redis")
    try:
        setup.publish(post_json(f"r2-{i}", setup.text(f"redis gone {i}")) for i in range(100))
        wait_for(lambda: stored_count(setup.dsn) == 200, 60, "posts stored without Redis")
        assert consumer.metrics()["sentiment_cache_errors_total"] >= 1
        assert consumer.readiness()["checks"]["redis"] is False
    finally:
        embedded_stack.start_service("redis")
    setup.publish(post_json(f"r3-{i}", setup.text(f"{WORDS[i % 5]} {i}")) for i in range(100))
    wait_for(lambda: stored_count(setup.dsn) == 300, 60, "posts stored after Redis is back")
    wait_for(lambda: consumer.readiness().get("ready") is True, 30, "ready again")


def test_postgres_down_mid_run_loses_nothing(
    setup: StreamSetup, running: list[ConsumerProcess], embedded_stack: EmbeddedStack
) -> None:
    consumer = start(setup, running)
    setup.publish(post_json(f"d1-{i}", setup.text(f"{WORDS[i % 5]} {i}")) for i in range(100))
    wait_for(lambda: stored_count(setup.dsn) == 100, 60, "first wave stored")
    embedded_stack.stop_service("postgres")
    try:
        setup.publish(post_json(f"d2-{i}", setup.text(f"db gone {i}")) for i in range(300))
        wait_for(lambda: consumer.metrics()["sentiment_database_errors_total"] >= 2, 60, "retries")
    finally:
        embedded_stack.start_service("postgres")
    wait_for(lambda: stored_count(setup.dsn) == 400, 90, "posts stored after PostgreSQL is back")
    assert consumer.running()
    assert consumer.stop() == 0
    assert stored_count(setup.dsn) == 400


def test_results_are_published_to_the_output_topic_when_asked(
    setup: StreamSetup, running: list[ConsumerProcess], topic_factory: Callable[..., str]
) -> None:
    results_topic = topic_factory(partitions=1)
    consumer = setup.consumer("c", results_topic=results_topic).start()
    running.append(consumer)
    consumer.wait_ready()
    setup.publish(post_json(f"o-{i}", setup.text(f"{WORDS[i % 5]}")) for i in range(20))
    wait_for(lambda: stored_count(setup.dsn) == 20, 60, "posts stored")
    records = read_all(setup.endpoints.kafka_bootstrap, results_topic, 20)
    published = [ClassificationResult.model_validate_json(r.value) for r in records]
    assert sorted(r.post_id for r in published) == sorted(f"o-{i}" for i in range(20))
    labels = dict(query(setup.dsn, "SELECT post_id, label FROM results"))
    assert all(labels[r.post_id] == r.label for r in published)
