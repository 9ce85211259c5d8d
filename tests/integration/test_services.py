"""Each real service does what the pipeline relies on: commits, expiry, migrations, upserts."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg2
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer

from consumer.coordinator import answer_known_coordinator_in_place
from consumer.results import QUERIES as RESULT_QUERIES
from devstack import EmbeddedStack, StackEndpoints
from schemas.migrate import apply_migrations, load_migrations


def _poll(consumer: KafkaConsumer, count: int, timeout_s: float = 30.0) -> list[bytes]:
    """Exactly `count` values (the group join happens inside the first polls)."""
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(values) < count and time.monotonic() < deadline:
        batches = consumer.poll(timeout_ms=500, max_records=count - len(values))
        values += [record.value for records in batches.values() for record in records]
    return values


def _publish(endpoints: StackEndpoints, topic: str, values: list[bytes]) -> None:
    """Each value, keyed by its index modulo 3, delivered before this returns."""
    producer = KafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap, acks="all")
    try:
        for i, value in enumerate(values):
            producer.send(topic, key=str(i % 3).encode(), value=value).get(timeout=10)
    finally:
        producer.close()


def test_consumer_group_resumes_after_the_committed_offset(
    stack_endpoints: StackEndpoints,
    topic_factory: Callable[..., str],
    consumer_options: dict[str, Any],
) -> None:
    topic = topic_factory(partitions=2)
    sent = [f"post-{i}".encode() for i in range(10)]
    _publish(stack_endpoints, topic, sent)

    first = KafkaConsumer(topic, **consumer_options)
    try:
        read_first = _poll(first, 4)
        first.commit()  # commits what poll returned, not what was prefetched
    finally:
        first.close()

    second = KafkaConsumer(topic, **consumer_options)
    try:
        read_second = _poll(second, len(sent) - len(read_first))
        assert second.poll(timeout_ms=500) == {}
    finally:
        second.close()

    assert len(read_first) == 4
    assert not set(read_first) & set(read_second)
    assert sorted(read_first + read_second) == sorted(sent)


def test_polls_with_a_known_coordinator_skip_the_io_thread(
    stack_endpoints: StackEndpoints,
    topic_factory: Callable[..., str],
    consumer_options: dict[str, Any],
) -> None:
    topic = topic_factory(partitions=2)
    _publish(stack_endpoints, topic, [f"post-{i}".encode() for i in range(6)])

    consumer = KafkaConsumer(topic, **consumer_options)
    handed_over: list[str] = []
    io_thread_run = consumer._coordinator._net.run

    def run(coroutine: Callable[..., Any], *args: Any) -> Any:
        handed_over.append(coroutine.__name__)
        return io_thread_run(coroutine, *args)

    try:
        assert len(_poll(consumer, 2)) == 2  # joins the group
        consumer._coordinator._net.run = run
        assert consumer.poll(timeout_ms=500, max_records=2)
        assert "ensure_coordinator_ready_async" in handed_over  # kafka-python's own way

        handed_over.clear()
        assert answer_known_coordinator_in_place(consumer)
        read = _poll(consumer, 2)
        consumer.poll(timeout_ms=200)
        assert len(read) == 2
        assert "ensure_coordinator_ready_async" not in handed_over
    finally:
        consumer.close()


def test_redis_keys_expire(redis_client: redis.Redis, redis_prefix: str) -> None:
    short, long = redis_prefix + "short", redis_prefix + "long"
    redis_client.set(short, b"cached", px=300)
    redis_client.set(long, b"cached", ex=60)

    assert 0 < redis_client.pttl(short) <= 300
    assert 0 < redis_client.ttl(long) <= 60
    deadline = time.monotonic() + 3
    while redis_client.exists(short) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert redis_client.get(short) is None
    assert redis_client.get(long) == b"cached"


def test_migrations_apply_once(database_factory: Callable[..., str]) -> None:
    dsn = database_factory(migrated=False)
    names = [migration.name for migration in load_migrations()]

    assert apply_migrations(dsn) == names
    assert apply_migrations(dsn) == []
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT name FROM schema_migrations ORDER BY name")
        assert [row[0] for row in cursor.fetchall()] == names
    connection.close()


_UPSERT = """
INSERT INTO results (post_id, text, label, positive_probability, confidence,
                     model_version, processed_at)
VALUES (%(post_id)s, %(text)s, %(label)s, %(p)s, %(confidence)s, %(model)s, %(at)s)
ON CONFLICT (post_id) DO NOTHING
"""


def test_duplicate_post_id_keeps_one_row(fresh_database: str) -> None:
    row = {
        "post_id": "post-1",
        "text": "what a lovely day",
        "label": "positive",
        "p": 0.93,
        "confidence": 0.93,
        "model": "test",
        "at": datetime.now(UTC),
    }
    with psycopg2.connect(fresh_database) as connection, connection.cursor() as cursor:
        cursor.execute(_UPSERT, row)
        cursor.execute(_UPSERT, {**row, "label": "negative", "p": 0.1})
        cursor.execute("SELECT label FROM results WHERE post_id = %s", ("post-1",))
        assert cursor.fetchall() == [("positive",)]
    with (
        pytest.raises(psycopg2.errors.UniqueViolation),
        psycopg2.connect(fresh_database) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(_UPSERT.replace("ON CONFLICT (post_id) DO NOTHING", ""), row)
    connection.close()


def test_embedded_broker_restart_recreates_known_topics(
    embedded_stack: EmbeddedStack, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(partitions=3)
    embedded_stack.kill_service("kafka")
    embedded_stack.start_service("kafka")

    consumer = KafkaConsumer(bootstrap_servers=embedded_stack.endpoints.kafka_bootstrap)
    try:
        assert consumer.partitions_for_topic(topic) == {0, 1, 2}
    finally:
        consumer.close()


def test_embedded_postgres_keeps_commits_across_a_kill(
    embedded_stack: EmbeddedStack, fresh_database: str
) -> None:
    with psycopg2.connect(fresh_database) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE survivor (id int)")
        cursor.execute("INSERT INTO survivor VALUES (1)")
    connection.close()
    embedded_stack.kill_service("postgres")
    embedded_stack.start_service("postgres")

    with psycopg2.connect(fresh_database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM survivor")
        assert cursor.fetchall() == [(1,)]
    connection.close()


_INDEXED_QUERIES = {
    **{name: sql for name, sql in RESULT_QUERIES.items() if name != "dead-letters"},
    "by source": (
        "SELECT post_id FROM results WHERE source = 'news'"
        " AND processed_at >= now() - make_interval(mins => %(minutes)s)"
    ),
}


@pytest.mark.parametrize("name", sorted(_INDEXED_QUERIES))
def test_the_queries_people_run_use_an_index(fresh_database: str, name: str) -> None:
    """A month of results: asking for the last hour must not scan the whole table."""
    with psycopg2.connect(fresh_database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO results (post_id, text, label, positive_probability, confidence,"
            " model_version, processed_at, source)"
            " SELECT 'p-' || i, 'text ' || i,"
            " (ARRAY['negative', 'neutral', 'positive'])[1 + i % 3],"
            " 0.5, 0.5, 'm', now() - i * interval '30 seconds',"
            " CASE WHEN i % 10 = 0 THEN 'news' END"
            " FROM generate_series(1, 90000) AS i"
        )
        cursor.execute("ANALYZE results")
        cursor.execute("EXPLAIN " + _INDEXED_QUERIES[name], {"minutes": 60, "limit": 20})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    connection.close()

    assert "Seq Scan on results" not in plan, plan
    assert "Index" in plan, plan
