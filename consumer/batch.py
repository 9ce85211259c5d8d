"""The pure core of a micro-batch: plain data in, plain data out, no I/O.

decode → split good from bad → clean → de-duplicate texts → (cache and model, elsewhere) →
rows for the database → offsets to commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, NamedTuple, Protocol

from common.tuples import named_tuples
from inference import Prediction
from schemas.decode import Rejection, decode_post
from schemas.messages import MAX_POST_BYTES, DeadLetterReason, IncomingPost


class Record(Protocol):
    """The parts of a Kafka record the service uses.

    kafka-python's ConsumerRecord has them, so the loop passes its records on as they come
    rather than copying each into an object of ours.
    """

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...  # milliseconds since the epoch
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


# NamedTuples rather than frozen dataclasses: a few of these are made per post, and a frozen
# dataclass takes three times longer to construct.


class Envelope(NamedTuple):
    """A Record as plain data, for tests."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


def where(record: Record) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"


class Accepted(NamedTuple):
    envelope: Record
    post: IncomingPost
    cleaned_text: str


class DeadLetter(NamedTuple):
    envelope: Record
    reason: DeadLetterReason
    detail: str


class Verdict(NamedTuple):
    prediction: Prediction
    cached: bool


def split_batch(
    envelopes: Sequence[Record], clean: Callable[[str], str]
) -> tuple[list[Accepted], list[DeadLetter]]:
    values = _each("value", envelopes)
    outcomes = list(map(decode_post, values))
    # Most batches are all good posts, none with an escaped NUL (which cannot span two JSON
    # objects): those are gathered with no Python call per post.
    if set(map(type, outcomes)) <= {IncomingPost} and b"\\u0000" not in b"".join(values):
        cleaned = map(clean, _each("text", outcomes))
        return list(named_tuples(Accepted, envelopes, outcomes, cleaned)), []
    accepted: list[Accepted] = []
    rejected: list[DeadLetter] = []
    for envelope, outcome in zip(envelopes, outcomes, strict=True):
        if isinstance(outcome, Rejection):
            rejected.append(DeadLetter(envelope, outcome.reason, outcome.detail))
        # JSON writes NUL as the escape \u0000 (a raw one is invalid JSON, refused above):
        # most posts skip nul_field.
        elif b"\\u0000" in envelope.value and (field := nul_field(outcome)) is not None:
            detail = f"{field}: contains NUL (U+0000), which PostgreSQL cannot store"
            rejected.append(DeadLetter(envelope, DeadLetterReason.SCHEMA_VIOLATION, detail))
        else:
            accepted.append(Accepted(envelope, outcome, clean(outcome.text)))
    return accepted, rejected


def nul_field(post: IncomingPost) -> str | None:
    """The first field holding a NUL character, or None.

    JSON allows "\\u0000" and the schema accepts it, but PostgreSQL text and jsonb cannot hold
    it: psycopg2 raises ValueError (which crashed the service, again after every restart) and
    jsonb refuses the row (which stalled the partition). Such a post is a dead letter.
    """
    if "\x00" in post.text:
        return "text"
    if post.author is not None and "\x00" in post.author:
        return "author"
    for key, value in post.metadata.items():
        if "\x00" in key or (isinstance(value, str) and "\x00" in value):
            return "metadata"
    return None


def first_per_post_id(accepted: Sequence[Accepted]) -> list[Accepted]:
    """A post id seen twice in one batch is stored once, as the first one (like the table)."""
    if len(set(_each("post.post_id", accepted))) == len(accepted):
        return list(accepted)
    seen: set[str] = set()
    unique = []
    for item in accepted:
        if item.post.post_id not in seen:
            seen.add(item.post.post_id)
            unique.append(item)
    return unique


def unique_texts(accepted: Sequence[Accepted]) -> list[str]:
    return list(dict.fromkeys(_each("cleaned_text", accepted)))


RESULT_COLUMNS: tuple[str, ...] = (
    "post_id", "text", "label", "positive_probability", "confidence", "model_version", "cached",
    "author", "source", "lang", "metadata", "created_at", "produced_at", "processed_at",
    "kafka_topic", "kafka_partition", "kafka_offset",
)  # fmt: skip


def result_columns(
    accepted: Sequence[Accepted],
    verdicts: dict[str, Verdict],
    model_version: str,
    processed_at: datetime,
) -> list[list[object]]:
    """The batch's rows of `results`, column by column in RESULT_COLUMNS order.

    Columns rather than rows: the writer encodes COPY data a column at a time, and most columns
    are one attribute of every post, gathered without a Python call per post.
    """
    posts, envelopes = _each("post", accepted), _each("envelope", accepted)
    chosen = list(map(verdicts.__getitem__, _each("cleaned_text", accepted)))
    predictions = _each("prediction", chosen)
    # Posts of a batch share few timestamps (a producer's batch has one per millisecond).
    timestamps = _each("timestamp", envelopes)
    produced = {timestamp: produced_at(timestamp) for timestamp in set(timestamps)}
    count = len(accepted)
    return [
        _each("post_id", posts),
        _each("text", posts),
        _each("label", predictions),
        _each("positive_probability", predictions),
        _each("confidence", predictions),
        [model_version] * count,
        _each("cached", chosen),
        _each("author", posts),
        _each("source", posts),
        _each("lang", posts),
        [json.dumps(post.metadata) if post.metadata else "{}" for post in posts],
        _each("created_at", posts),
        list(map(produced.__getitem__, timestamps)),
        [processed_at] * count,
        _each("topic", envelopes),
        _each("partition", envelopes),
        _each("offset", envelopes),
    ]


def _each(attribute: str, items: Iterable[Any]) -> list[Any]:
    return list(map(attrgetter(attribute), items))


def produced_at(timestamp_ms: int) -> datetime | None:
    """The record's Kafka timestamp, or None if Python's dates cannot hold it.

    Producers set the timestamp, and brokers accept any: one past the year 9999 must not
    fail its batch (and every batch after it, restart after restart).
    """
    try:
        return datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None


DEAD_LETTER_COLUMNS = (
    "source_topic",
    "source_partition",
    "source_offset",
    "reason",
    "detail",
    "original_value",
    "original_size",
    "failed_at",
)
STORED_VALUE_BYTES = 4096


def dead_letter_rows(
    letters: Sequence[DeadLetter], failed_at: datetime
) -> list[tuple[object, ...]]:
    rows = []
    for letter in letters:
        envelope, value = letter.envelope, letter.envelope.value or b""
        rows.append(
            (
                envelope.topic,
                envelope.partition,
                envelope.offset,
                letter.reason.value,
                letter.detail,
                value[:STORED_VALUE_BYTES],
                len(value),
                failed_at,
            )
        )
    return rows


def next_offsets(envelopes: Iterable[Record]) -> dict[tuple[str, int], int]:
    """For each partition, the offset to commit: one past the last record handled."""
    offsets: dict[tuple[str, int], int] = {}
    for envelope in envelopes:
        key = (envelope.topic, envelope.partition)
        offsets[key] = max(offsets.get(key, 0), envelope.offset + 1)
    return offsets


# A message over the size limit may be as large as the broker allows; its copy with the headers
# added would then be refused, and the batch retried for ever. The detail gives its size.
DEAD_LETTER_VALUE_BYTES = MAX_POST_BYTES


def dead_letter_value(letter: DeadLetter) -> bytes:
    """What a dead letter carries: the original bytes, at most DEAD_LETTER_VALUE_BYTES of them.

    A null value (a tombstone) becomes empty: a Kafka record needs a key or a value.
    """
    return (letter.envelope.value or b"")[:DEAD_LETTER_VALUE_BYTES]


def dead_letter_headers(letter: DeadLetter, failed_at: datetime) -> list[tuple[str, bytes]]:
    envelope = letter.envelope
    return [
        ("dlq.reason", letter.reason.value.encode()),
        ("dlq.detail", letter.detail.encode()),
        ("dlq.source_topic", envelope.topic.encode()),
        ("dlq.source_partition", str(envelope.partition).encode()),
        ("dlq.source_offset", str(envelope.offset).encode()),
        ("dlq.failed_at", failed_at.isoformat().encode()),
    ]
