"""The consumer's pure core: batches, rows, offsets, cache keys, /predict input."""

import json
from datetime import UTC, datetime

import numpy as np
import pytest
import redis
from prometheus_client import CollectorRegistry, Histogram
from redis.connection import HiredisRespSerializer

from consumer.batch import (
    DEAD_LETTER_COLUMNS,
    RESULT_COLUMNS,
    Envelope,
    Verdict,
    dead_letter_headers,
    dead_letter_rows,
    dead_letter_value,
    first_per_post_id,
    next_offsets,
    result_columns,
    split_batch,
    unique_texts,
)
from consumer.cache import (
    HiredisPacker,
    RepeatedTexts,
    cache_key,
    decode_prediction,
    encode_prediction,
)
from consumer.classify import CachedClassifier
from consumer.http import MAX_PREDICT_TEXTS, PredictError, parse_predict_body
from consumer.metrics import LATENCY_BUCKETS, BatchHistogram, Metrics
from inference import Prediction
from schemas.messages import MAX_POST_BYTES, DeadLetterReason


def envelope(offset: int, value: bytes | None, partition: int = 0) -> Envelope:
    return Envelope("posts", partition, offset, 1_700_000_000_000 + offset, None, value)


def post(post_id: str, text: str, **fields: object) -> bytes:
    return json.dumps({"post_id": post_id, "text": text, **fields}).encode()


def test_split_batch_separates_good_from_bad_and_cleans_the_good() -> None:
    batch = [
        envelope(0, post("a", "Hello World")),
        envelope(1, b"{oops"),
        envelope(2, post("b", "")),
        envelope(3, post("c", "hello world")),
    ]
    accepted, rejected = split_batch(batch, str.lower)
    assert [item.post.post_id for item in accepted] == ["a", "c"]
    assert [item.cleaned_text for item in accepted] == ["hello world", "hello world"]
    assert [(d.envelope.offset, d.reason) for d in rejected] == [
        (1, DeadLetterReason.MALFORMED_JSON),
        (2, DeadLetterReason.EMPTY_TEXT),
    ]
    assert unique_texts(accepted) == ["hello world"]


def test_a_post_id_repeated_in_a_batch_keeps_its_first_version() -> None:
    accepted, _ = split_batch(
        [envelope(0, post("a", "first")), envelope(1, post("a", "second"))], str.lower
    )
    assert [item.post.text for item in first_per_post_id(accepted)] == ["first"]


def as_dicts(columns: list[list[object]]) -> list[dict[str, object]]:
    return [dict(zip(RESULT_COLUMNS, row, strict=True)) for row in zip(*columns, strict=True)]


def test_result_columns_follow_the_column_order() -> None:
    item = Envelope("posts", 2, 8, 1_700_000_000_009, None, post("b", "Meh", author="x"))
    accepted, _ = split_batch([envelope(7, post("a", "Nice")), item], str.lower)
    verdicts = {
        "nice": Verdict(Prediction("positive", 0.9, 0.9), cached=True),
        "meh": Verdict(Prediction("negative", 0.2, 0.8), cached=False),
    }
    processed = datetime(2026, 1, 1, tzinfo=UTC)
    first, second = as_dicts(result_columns(accepted, verdicts, "v1", processed))
    assert first["post_id"] == "a"
    assert first["text"] == "Nice"
    assert (first["label"], first["positive_probability"], first["confidence"]) == (
        "positive",
        0.9,
        0.9,
    )
    assert first["cached"] is True
    assert first["model_version"] == "v1"
    assert first["processed_at"] == processed
    assert first["metadata"] == "{}"
    assert (first["kafka_topic"], first["kafka_partition"], first["kafka_offset"]) == (
        "posts",
        0,
        7,
    )
    assert first["produced_at"] == datetime.fromtimestamp(1_700_000_000.007, UTC)
    assert (second["post_id"], second["label"], second["cached"]) == ("b", "negative", False)
    assert (second["author"], second["kafka_partition"], second["kafka_offset"]) == ("x", 2, 8)
    assert second["produced_at"] == datetime.fromtimestamp(1_700_000_000.009, UTC)
    assert result_columns([], {}, "v1", processed) == [[] for _ in RESULT_COLUMNS]


@pytest.mark.parametrize("timestamp_ms", [253_402_300_800_000, -62_135_596_800_001, 2**63 - 1])
def test_a_kafka_timestamp_out_of_python_dates_stores_no_produced_at(timestamp_ms: int) -> None:
    # Producers set the timestamp and brokers take any: it must not fail the batch for ever.
    item = Envelope("posts", 0, 7, timestamp_ms, None, post("a", "Nice"))
    accepted, _ = split_batch([item], str.lower)
    verdict = Verdict(Prediction("positive", 0.9, 0.9), cached=False)
    columns = result_columns(accepted, {"nice": verdict}, "v1", datetime(2026, 1, 1, tzinfo=UTC))
    assert as_dicts(columns)[0]["produced_at"] is None


def test_offsets_to_commit_are_one_past_the_last_per_partition() -> None:
    batch = [envelope(5, b"", 0), envelope(9, b"", 0), envelope(3, b"", 1), envelope(7, b"", 0)]
    assert next_offsets(batch) == {("posts", 0): 10, ("posts", 1): 4}


def test_dead_letters_carry_source_position_and_reason() -> None:
    _, rejected = split_batch([envelope(4, b"\xff" * 5000, partition=2)], str.lower)
    failed_at = datetime(2026, 1, 1, tzinfo=UTC)
    headers = dict(dead_letter_headers(rejected[0], failed_at))
    assert headers["dlq.reason"] == b"invalid_utf8"
    assert headers["dlq.source_partition"] == b"2"
    assert headers["dlq.source_offset"] == b"4"
    (row,) = dead_letter_rows(rejected, failed_at)
    stored = dict(zip(DEAD_LETTER_COLUMNS, row, strict=True))
    assert stored["original_size"] == 5000
    assert len(stored["original_value"]) == 4096


def test_a_dead_letter_carries_the_original_bytes_up_to_the_size_limit() -> None:
    values = [b"{bad", b"x" * (MAX_POST_BYTES + 1), b"y" * 5_000_000, None]
    _, rejected = split_batch([envelope(i, v) for i, v in enumerate(values)], str.lower)
    carried = [dead_letter_value(letter) for letter in rejected]
    # A copy of a huge message (plus headers) would be refused by the broker, for ever; a
    # null value (a tombstone) cannot be sent without a key.
    assert carried == [b"{bad", b"x" * MAX_POST_BYTES, b"y" * MAX_POST_BYTES, b""]
    assert "5000000 bytes" in rejected[2].detail


def test_cache_key_depends_on_model_version_and_cleaned_text() -> None:
    assert cache_key("v1", "good day") == cache_key("v1", "good day")
    assert cache_key("v1", "good day") != cache_key("v2", "good day")
    assert cache_key("v1", "good day") != cache_key("v1", "bad day")
    assert cache_key("v1", "good day").startswith("sentiment:v1:")


@pytest.mark.parametrize(
    "command",
    [
        ("MGET", "sentiment:v1:ab", "sentiment:v1:cd"),
        ("EVALSHA", "f" * 40, 2, "k1", "k2", 86400, "positive|0.900000|0.900000", b"raw"),
        ("SCRIPT LOAD", "return 1"),
        ("CLIENT SETINFO", "LIB-NAME", "redis-py"),
        (b"CLIENT SETINFO", b"LIB-VER", 1.5),
        ("SET", "k", "välue"),
    ],
)
def test_the_cache_packs_commands_as_redis_py_does(command: tuple[object, ...]) -> None:
    assert HiredisPacker().pack(*command) == HiredisRespSerializer().pack(*command)


def test_an_argument_redis_cannot_take_is_a_redis_error() -> None:
    with pytest.raises(redis.DataError):
        HiredisPacker().pack("SET", "k", None)


def test_cached_predictions_round_trip_and_garbage_is_a_miss() -> None:
    prediction = Prediction("neutral", 0.51, 0.62)
    decoded = decode_prediction(encode_prediction(prediction).encode())
    assert decoded == Prediction("neutral", 0.51, 0.62)
    assert decode_prediction(b"not-a-prediction") is None
    # Entries this code did not write must not reach the table, whose checks would refuse them.
    for garbage in [b"\xff\xfe", b"joyful|0.5|0.5", b"neutral|nan|0.5", b"positive|0.5|1.5"]:
        assert decode_prediction(garbage) is None, garbage


class RecordingCache:
    """Stands in for PredictionCache: records which texts would be written."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def put_many(self, entries: list[tuple[str, Prediction]]) -> None:
        self.written.extend(text for text, _ in entries)


def verdicts(*texts: str, cached: bool = False) -> dict[str, Verdict]:
    return {text: Verdict(Prediction("positive", 0.9, 0.9), cached) for text in texts}


def remembering(repeats: RepeatedTexts | None) -> tuple[CachedClassifier, RecordingCache, Metrics]:
    cache, metrics = RecordingCache(), Metrics(CollectorRegistry())
    return CachedClassifier(None, cache, metrics, repeats), cache, metrics  # type: ignore[arg-type]


def test_the_cache_admits_a_result_at_its_texts_second_sighting() -> None:
    classifier, cache, metrics = remembering(RepeatedTexts(generation=100, error_rate=1e-6))
    classifier.remember(verdicts("a", "b"))
    classifier.remember(verdicts("b", "c"))
    classifier.remember({**verdicts("c", cached=True), **verdicts("a")})  # a hit: not written
    assert cache.written == ["b", "a"]
    admissions = metrics.cache_admissions
    assert admissions.labels("admitted")._value.get() == 2
    assert admissions.labels("first_seen")._value.get() == 3


def test_without_the_admission_filter_every_new_result_is_written() -> None:
    classifier, cache, _ = remembering(None)
    classifier.remember({**verdicts("a", "b"), **verdicts("c", cached=True)})
    assert cache.written == ["a", "b"]


def test_a_sighting_is_remembered_for_at_least_a_generation_of_texts() -> None:
    repeats = RepeatedTexts(generation=1_000, error_rate=1e-6)
    assert repeats.seen_before(["x", "y"]) == [False, False]
    assert repeats.seen_before([f"a {i}" for i in range(998)]) == [False] * 998  # turns over
    assert repeats.seen_before(["x"]) == [True]  # found in the older generation
    for batch in range(4):  # two more turnovers, the first with "x" in the newer generation
        assert not any(repeats.seen_before([f"b {batch} {i}" for i in range(500)]))
    assert repeats.seen_before(["x", "y", "b 3 499"]) == [False, False, True]


def test_the_admission_filter_keeps_to_its_false_positive_rate() -> None:
    repeats = RepeatedTexts(generation=20_000, error_rate=0.01)
    repeats.seen_before([f"seen {i}" for i in range(19_999)])
    false_positives = sum(repeats.seen_before([f"new {i}" for i in range(10_000)]))
    assert false_positives < 300  # 1 % expected; 3 % is over 20 standard deviations off


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "expected"),
        (b'{"texts": []}', "non-empty"),
        (b'{"texts": ["ok", ""]}', "texts[1]"),
        (b'{"texts": [3]}', "texts[0]"),
        (json.dumps({"texts": ["x"] * (MAX_PREDICT_TEXTS + 1)}).encode(), "at most"),
        (json.dumps({"text": "x" * 5001}).encode(), "longer than"),
    ],
)
def test_predict_body_is_validated(body: bytes, message: str) -> None:
    with pytest.raises(PredictError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_predict_body(body)


def test_predict_body_accepts_one_text_or_many() -> None:
    assert parse_predict_body(b'{"text": "hi"}') == ["hi"]
    assert parse_predict_body(b'{"texts": ["a", "b"]}') == ["a", "b"]


def test_metrics_use_units_and_bounded_labels() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.posts_classified.labels("positive").inc(3)
    assert registry.get_sample_value("sentiment_posts_classified_total", {"label": "positive"}) == 3
    for family in registry.collect():
        assert family.name.startswith("sentiment_")
        assert not {"post_id", "text"} & {
            label for sample in family.samples for label in sample.labels
        }


def test_batch_histogram_exposes_what_a_histogram_fed_one_by_one_exposes() -> None:
    values = [0.0, 0.004, 0.005, 0.0051, 0.3, 1.0, 59.9, 61.0, 1e9]  # on, between, past bounds
    reference_registry, batch_registry = CollectorRegistry(), CollectorRegistry()
    reference = Histogram(
        "latency_seconds", "doc", buckets=LATENCY_BUCKETS, registry=reference_registry
    )
    for value in values:
        reference.observe(value)
    batched = BatchHistogram("latency_seconds", "doc", LATENCY_BUCKETS, batch_registry)
    batched.observe_many(np.array(values[:4]))
    batched.observe_many(np.array(values[4:]))

    def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
        return {
            (sample.name, sample.labels.get("le", "")): sample.value
            for family in registry.collect()
            for sample in family.samples
            if not sample.name.endswith("_created")
        }

    assert samples(batch_registry) == samples(reference_registry)
    assert samples(batch_registry)[("latency_seconds_count", "")] == len(values)
