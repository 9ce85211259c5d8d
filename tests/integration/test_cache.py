"""The prediction cache against a real Redis: one-command writes with expiry, reads back."""

import redis
from prometheus_client import CollectorRegistry

from consumer.cache import PredictionCache, cache_key
from consumer.metrics import Metrics
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
