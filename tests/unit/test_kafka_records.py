"""Records decoded in C (consumer.records) against kafka-python's own decoding of the same bytes."""

from __future__ import annotations

import struct

import pytest
from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord, Fetcher
from kafka.errors import CorruptRecordError
from kafka.protocol.consumer import IsolationLevel
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder
from kafka.record.util import calc_crc32c
from kafka.structs import TopicPartition

from consumer.records import CDecodedPartitionRecords, use_c_record_decoder

TP = TopicPartition("posts", 3)
GZIP = 1


def batch(
    count: int, *, start: int = 0, magic: int = 2, compression: int = 0, headers: bool = False
) -> bytes:
    builder = MemoryRecordsBuilder(
        magic=magic, compression_type=compression, batch_size=1 << 20, offset=start
    )
    for i in range(start, start + count):
        builder.append(
            timestamp=1_764_700_000_000 + i,
            key=None if i % 3 == 0 else f"post-{i}".encode(),
            value=None if i % 5 == 0 else f'{{"post_id": "p{i}", "text": "tweet {i} ☺"}}'.encode(),
            headers=[("source", b"replay"), ("empty", None)] if headers and magic == 2 else [],
        )
    builder.close()
    return bytes(builder.buffer())


def as_control_batch(data: bytes) -> bytes:
    """`data` (one v2 batch) with its control flag set and its CRC made right again."""
    buffer = bytearray(data)
    attributes_at = DefaultRecordBatch.ATTRIBUTES_OFFSET
    (attributes,) = struct.unpack_from(">h", buffer, attributes_at)
    struct.pack_into(">h", buffer, attributes_at, attributes | DefaultRecordBatch.CONTROL_MASK)
    crc = calc_crc32c(memoryview(buffer)[attributes_at:])
    struct.pack_into(">I", buffer, DefaultRecordBatch.CRC_OFFSET, crc)
    return bytes(buffer)


def decode(
    kind: type, data: bytes, fetch_offset: int = 0, **options: object
) -> tuple[list[ConsumerRecord], Fetcher.PartitionRecords]:
    records = kind(fetch_offset, TP, MemoryRecords(data), **options)
    return records.take(), records


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(batch(10), id="one batch"),
        pytest.param(batch(7) + batch(9, start=7) + batch(1, start=16), id="three batches"),
        pytest.param(batch(12, headers=True), id="headers"),
        pytest.param(batch(40, compression=GZIP, headers=True), id="gzip"),
        pytest.param(
            batch(4) + as_control_batch(batch(1, start=4)) + batch(3, start=5), id="control batch"
        ),
        pytest.param(batch(6, magic=1), id="message format v1"),
        pytest.param(batch(3) + batch(4, start=3, magic=1), id="v2 then v1"),
        pytest.param(b"", id="empty"),
    ],
)
def test_same_records_and_positions_as_kafka_python(data: bytes) -> None:
    expected, reference = decode(Fetcher.PartitionRecords, data)
    decoded, records = decode(CDecodedPartitionRecords, data)
    assert decoded == expected
    assert records.next_fetch_offset == reference.next_fetch_offset
    assert records.leader_epoch == reference.leader_epoch
    assert records.records_read == reference.records_read
    assert not records  # drained, as kafka-python's are after the last record


def test_v2_records_are_not_decoded_by_kafka_python(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: DefaultRecordBatch) -> None:
        raise AssertionError("decoded by kafka-python")

    monkeypatch.setattr(DefaultRecordBatch, "_read_msg", refuse)
    decoded, _ = decode(CDecodedPartitionRecords, batch(5, headers=True))
    assert [record.offset for record in decoded] == [0, 1, 2, 3, 4]
    with pytest.raises(AssertionError, match="kafka-python"):
        decode(Fetcher.PartitionRecords, batch(5))


def test_control_records_are_skipped() -> None:
    decoded, records = decode(
        CDecodedPartitionRecords, batch(2) + as_control_batch(batch(1, start=2))
    )
    assert [record.offset for record in decoded] == [0, 1]
    assert records.next_fetch_offset == 3


def test_position_follows_each_record_taken() -> None:
    """A poll may take part of a batch: the position must be right after the last record taken,
    or the next fetch skips or repeats records."""
    records = CDecodedPartitionRecords(0, TP, MemoryRecords(batch(10) + batch(5, start=10)))
    taken = records.take(4)
    assert [record.offset for record in taken] == [0, 1, 2, 3]
    assert records.next_fetch_offset == 4
    taken = records.take(8)
    assert [record.offset for record in taken] == list(range(4, 12))
    assert records.next_fetch_offset == 12


def test_records_before_the_fetch_offset_are_skipped() -> None:
    decoded, records = decode(CDecodedPartitionRecords, batch(10), fetch_offset=6)
    assert [record.offset for record in decoded] == [6, 7, 8, 9]
    assert records.next_fetch_offset == 10


def test_a_corrupt_batch_is_kafka_pythons_crc_error() -> None:
    data = bytearray(batch(5))
    data[-3] ^= 0xFF  # inside the last record's value
    with pytest.raises(CorruptRecordError, match="crc"):
        CDecodedPartitionRecords(0, TP, MemoryRecords(bytes(data))).take()


def test_deserializers_and_read_committed_use_kafka_pythons_decoding() -> None:
    class Upper:
        def deserialize(self, topic: str, headers: object, data: bytes | None) -> object:
            return None if data is None else data.upper()

    data = batch(6)
    for options in (
        {"value_deserializer": Upper()},
        {"isolation_level": IsolationLevel.READ_COMMITTED},
    ):
        assert (
            decode(CDecodedPartitionRecords, data, **options)[0]
            == (decode(Fetcher.PartitionRecords, data, **options)[0])
        )


def test_a_consumer_is_given_the_c_decoder_and_its_settings_use_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = KafkaConsumer(bootstrap_servers="127.0.0.1:1", api_version=(2, 5))
    try:
        assert use_c_record_decoder(consumer)
        fetcher = consumer._fetcher
        assert fetcher.PartitionRecords is CDecodedPartitionRecords
        # Built as the fetcher builds them, with this consumer's settings: decoded in C.
        monkeypatch.setattr(DefaultRecordBatch, "_read_msg", None)
        records = fetcher.PartitionRecords(
            0,
            TP,
            MemoryRecords(batch(3)),
            key_deserializer=fetcher.config["key_deserializer"],
            value_deserializer=fetcher.config["value_deserializer"],
            check_crcs=fetcher.config["check_crcs"],
            isolation_level=fetcher._isolation_level,
        )
        assert [record.offset for record in records.take()] == [0, 1, 2]
    finally:
        consumer.close()
