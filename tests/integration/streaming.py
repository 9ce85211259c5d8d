"""Helpers for tests that run real consumer processes against the test services."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from kafka import KafkaConsumer, KafkaProducer

from consumer.processes import ConsumerProcess, service_env
from devstack import StackEndpoints


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_json(post_id: str, text: str, **fields: object) -> bytes:
    return json.dumps({"post_id": post_id, "text": text, **fields}).encode()


def publish(bootstrap: str, topic: str, values: Iterable[bytes | tuple[bytes, bytes]]) -> int:
    """Send raw values (or (key, value) pairs) and wait for every acknowledgement."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    futures = []
    for value in values:
        key, raw = value if isinstance(value, tuple) else (None, value)
        futures.append(producer.send(topic, value=raw, key=key))
    producer.flush()
    for future in futures:
        future.get(timeout=30)
    producer.close()
    return len(futures)


def query(dsn: str, sql: str, *params: object) -> list[tuple]:  # type: ignore[type-arg]
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    connection.close()
    return rows


def stored_count(dsn: str) -> int:
    return query(dsn, "SELECT count(*) FROM results")[0][0]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # a server may be restarting: keep waiting
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list:  # type: ignore[type-arg]
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=2000,
    )
    records: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    # Anything beyond `expected` would be a duplicate: give it a moment to show up.
    for batch in consumer.poll(timeout_ms=1000).values():
        records.extend(batch)
    consumer.close()
    return records


@dataclass
class StreamSetup:
    """One test's topics, database and consumer settings."""

    endpoints: StackEndpoints
    posts_topic: str
    dead_letter_topic: str
    dsn: str
    group_id: str
    bundle_path: Path
    logs: Path
    marker: str  # a word unique to this test, so its texts never hit another test's cache

    def env(self, **settings: object) -> dict[str, str]:
        defaults: dict[str, object] = {
            "posts_topic": self.posts_topic,
            "dead_letter_topic": self.dead_letter_topic,
            "group_id": self.group_id,
            "bundle_path": self.bundle_path,
            "max_poll_interval_ms": 10_000,
            "session_timeout_ms": 6_000,
            "batch_max_wait_ms": 20,
            "database_retry_max_seconds": 1,
            "cache_retry_after_seconds": 1,
            "log_format": "text",
        }
        defaults.update(settings)
        return service_env(
            self.endpoints.kafka_bootstrap, self.endpoints.redis_url, self.dsn, **defaults
        )

    def consumer(self, name: str = "c", **settings: object) -> ConsumerProcess:
        return ConsumerProcess(self.env(**settings), free_port(), self.logs / f"{name}.log")

    def text(self, words: str) -> str:
        return f"{words} {self.marker}"

    def publish(self, values: Iterable[bytes | tuple[bytes, bytes]]) -> int:
        return publish(self.endpoints.kafka_bootstrap, self.posts_topic, values)


def new_marker() -> str:
    return "zq" + uuid.uuid4().hex[:10]
