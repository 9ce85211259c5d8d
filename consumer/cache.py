"""The Redis cache of predictions.

Keys are derived from the model version and the *cleaned* text, so a new model never serves
an old model's answer and reposts that clean to the same text share one entry. Redis being
down never stops classification: errors are counted and the cache is skipped for a while.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from operator import itemgetter
from typing import Any

import hiredis
import redis
from rbloom import Bloom

from consumer.metrics import Metrics
from inference import Prediction
from schemas.messages import LABELS

logger = logging.getLogger(__name__)

# One command for a whole batch of writes: a pipeline of SETs costs two to three times more
# client CPU per key (redis-py packs every command separately). ARGV[1] is the expiry.
_SET_MANY_WITH_EXPIRY = """
for i, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1])
end
"""


def cache_key(model_version: str, cleaned_text: str) -> str:
    digest = hashlib.blake2b(cleaned_text.encode(), digest_size=16).hexdigest()
    return f"sentiment:{model_version}:{digest}"


# "label|positive|confidence", formatted from the Prediction tuple itself in C (no Python call
# per entry). Six decimals: inference.PROBABILITY_DECIMALS, to which the model rounds.
encode_prediction: Callable[[Prediction], str] = "%s|%.6f|%.6f".__mod__


def decode_prediction(value: bytes | str) -> Prediction | None:
    """The cached prediction, or None for an entry this code cannot read (a miss)."""
    try:
        text = value.decode() if isinstance(value, bytes) else value
        label, positive, confidence = text.split("|")
        prediction = Prediction(label, float(positive), float(confidence))
    except ValueError:  # UnicodeDecodeError is one too
        return None
    # Whatever else wrote the key, a row the results table refuses would stall the partition.
    if label not in LABELS or not (0.0 <= prediction.positive_probability <= 1.0):
        return None
    return prediction if 0.0 <= prediction.confidence <= 1.0 else None


class HiredisPacker:
    """redis-py's hiredis command packer without its Python pass over every argument (which
    turns bytearray and memoryview into bytes; this cache sends neither): a batch's MGET and
    script call took 0.4-0.5 µs less client CPU per post (docs/performance.md)."""

    def pack(self, *args: Any) -> list[bytes]:
        name = args[0].encode() if isinstance(args[0], str) else args[0]
        if b" " in name:  # "SCRIPT LOAD" and the like go as two words
            args = (*name.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError as error:  # as redis-py reports an argument it cannot send
            raise redis.DataError(str(error)) from error


def redis_client(url: str, timeout_seconds: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        command_packer=HiredisPacker(),
    )


class RepeatedTexts:
    """Which cleaned texts this process has classified before, for the cache's admission.

    Most posts' texts never come again (0.7 % of a Sentiment140 sample did), and writing each
    new result to Redis was the largest Redis CPU per post; a text that repeats is written at
    its second sighting and served from the cache from the third on. Two Bloom filters of
    `generation` texts each: when the newer one is full it becomes the older one and the
    oldest is dropped, so a sighting is remembered over at least the next `generation`
    distinct texts. A false positive (`error_rate`) only writes a result seen once.
    """

    def __init__(self, generation: int = 1 << 20, error_rate: float = 0.01) -> None:
        self._generation = generation
        self._error_rate = error_rate
        self._current = Bloom(generation, error_rate)
        self._previous = Bloom(generation, error_rate)
        self._added = 0
        # The stream's cache writer and POST /predict's handler both call in.
        self._lock = threading.Lock()

    def seen_before(self, texts: Sequence[str]) -> list[bool]:
        """For each of `texts` (distinct), whether it was seen before; all are seen after."""
        with self._lock:
            current, previous = self._current, self._previous
            seen = [text in current or text in previous for text in texts]
            current.update(texts)
            self._added += len(texts)
            if self._added >= self._generation:
                self._previous = current
                self._current = Bloom(self._generation, self._error_rate)
                self._added = 0
        return seen


class PredictionCache:
    def __init__(
        self,
        client: redis.Redis | None,
        model_version: str,
        ttl_seconds: int,
        metrics: Metrics,
        retry_after_seconds: float = 5.0,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._metrics = metrics
        self._retry_after = retry_after_seconds
        self._skip_until = 0.0
        self._set_many = client.register_script(_SET_MANY_WITH_EXPIRY) if client else None
        # Not memoised for the write after the lookup: few results are written (RepeatedTexts),
        # and with a memo every new text cost 1.9 µs instead of 1.3 (interleaved, one process).
        self._key = partial(cache_key, model_version)

    @property
    def available(self) -> bool:
        return self._client is not None and time.monotonic() >= self._skip_until

    def get_many(self, cleaned_texts: Sequence[str]) -> list[Prediction | None]:
        """One round trip; a miss (or an unusable cache) is None."""
        if not cleaned_texts or not self.available:
            return [None] * len(cleaned_texts)
        keys = list(map(self._key, cleaned_texts))
        try:
            values = self._client.mget(keys)  # type: ignore[union-attr]
        except redis.RedisError as error:
            self._failed("lookup", error)
            return [None] * len(cleaned_texts)
        return [decode_prediction(value) if value is not None else None for value in values]

    def put_many(self, entries: Sequence[tuple[str, Prediction]]) -> None:
        if not entries or not self.available:
            return
        keys = list(map(self._key, map(itemgetter(0), entries)))
        values = list(map(encode_prediction, map(itemgetter(1), entries)))
        try:
            self._set_many(keys=keys, args=[self._ttl, *values])  # type: ignore[misc]
        except redis.RedisError as error:
            self._failed("write", error)

    def ping(self) -> bool:
        if self._client is None:
            return False
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def _failed(self, operation: str, error: Exception) -> None:
        self._metrics.cache_errors.inc()
        self._skip_until = time.monotonic() + self._retry_after
        logger.warning(
            "redis %s failed, going on without cache for %.0fs: %s",
            operation,
            self._retry_after,
            error,
        )
