"""Kafka records decoded in C for kafka-python's consumer.

kafka-python decodes every record in Python (varints, a bytearray copy, an object per record):
about 9 µs of the loop's time per post in `poll()` here, the largest single block of the
consumer's own Python. aiokafka ships a decoder of the same record format compiled with
Cython: records taken as the fetcher takes them cost 1.3 µs each with it against kafka-python's
5.1 (`python -m benchmarks.kafka_records`).
`use_c_record_decoder` gives a KafkaConsumer partition records whose record batches that
decoder reads; kafka-python still fetches, checks each batch's CRC, tracks the leader epoch
and positions, and builds the same ConsumerRecord tuples.

This reaches into kafka-python's fetcher (its `PartitionRecords` class, a batch's buffer), so
anything it does not expect falls back to kafka-python's own decoding: a deserializer, the
read_committed isolation level (aborted transactions), message formats before v2, a
kafka-python without those internals, or no aiokafka. tests/unit/test_kafka_records.py checks
the records against kafka-python's own for every kind of batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import repeat
from operator import attrgetter
from typing import Any

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord, Fetcher
from kafka.errors import CorruptRecordError
from kafka.protocol.consumer import IsolationLevel
from kafka.record.default_records import DefaultRecordBatch

from common.tuples import named_tuples

try:
    from aiokafka.errors import CorruptRecordException  # type: ignore[import-untyped]
    from aiokafka.record.default_records import (  # type: ignore[import-untyped]
        DefaultRecordBatch as CRecordBatch,
    )
except ImportError:
    CRecordBatch = None
    CorruptRecordException = CorruptRecordError
if CRecordBatch is not None and "_crecords" not in CRecordBatch.__module__:
    CRecordBatch = None  # aiokafka without its compiled extension: no faster than kafka-python

logger = logging.getLogger(__name__)

_V2 = 2


class CDecodedPartitionRecords(Fetcher.PartitionRecords):  # type: ignore[misc]
    """kafka-python's records of one fetched partition, with v2 record batches decoded in C."""

    def _unpack_records(  # type: ignore[no-untyped-def]
        self, tp, records, key_deserializer, value_deserializer
    ) -> Iterator[ConsumerRecord]:
        if (
            key_deserializer is not None
            or value_deserializer is not None
            or self.isolation_level != IsolationLevel.READ_UNCOMMITTED
        ):
            yield from super()._unpack_records(tp, records, key_deserializer, value_deserializer)
            return
        yield from self._unpack_v2(tp, records)

    def _unpack_v2(self, tp: Any, records_data: Any) -> Iterator[ConsumerRecord]:
        topic, partition = tp.topic, tp.partition
        last_batch = None
        batch = records_data.next_batch()
        while batch is not None:
            last_batch = batch
            if batch.magic != _V2:  # an older format: kafka-python reads the rest
                yield from super()._unpack_records(tp, _Prepended(batch, records_data), None, None)
                return
            if self.check_crcs and not batch.validate_crc():
                raise CorruptRecordError(
                    f"Record batch for partition {self.topic_partition} at offset "
                    f"{batch.base_offset} failed crc check"
                )
            self.leader_epoch = leader_epoch = batch.leader_epoch
            if batch.is_control_batch:  # transaction markers: not for the application
                self.next_fetch_offset = batch.next_offset
                batch = records_data.next_batch()
                continue
            self.bytes_read += batch.size_in_bytes
            records = list(_c_records(batch))
            self.records_read += len(records)
            yield from _consumer_records(topic, partition, leader_epoch, records)
            batch = records_data.next_batch()
        # v2 keeps a batch's last offset even if compaction removed its last record: fetch
        # from past it, or the same batch is fetched again (as kafka-python does).
        if last_batch is not None:
            self.next_fetch_offset = last_batch.next_offset
        self.drain()

    def take(self, n: int | None = None) -> list[ConsumerRecord]:
        """kafka-python's `take`, the position set once per call rather than once per record."""
        taken: list[ConsumerRecord] = super().take(n)
        # Drained: _unpack_v2 has set the position past its last batch.
        if taken and self.record_iterator is not None:
            self.next_fetch_offset = taken[-1].offset + 1
        return taken


def _consumer_records(
    topic: str, partition: int, leader_epoch: int, records: list[Any]
) -> Iterator[ConsumerRecord]:
    """kafka-python's ConsumerRecord tuples of one batch's decoded records, column by column:
    no Python code runs per record unless a key or value is null or a record has headers."""
    count = len(records)
    keys = list(map(_key, records))
    values = list(map(_value, records))
    headers = list(map(_headers, records))
    return named_tuples(
        ConsumerRecord,
        repeat(topic, count),
        repeat(partition, count),
        repeat(leader_epoch, count),
        map(_offset, records),
        map(_timestamp, records),
        map(_timestamp_type, records),
        keys,
        values,
        headers,
        repeat(None, count),  # checksum: v2 records have none
        _sizes(keys),
        _sizes(values),
        map(_header_size, headers) if any(headers) else repeat(-1, count),
    )


_offset = attrgetter("offset")
_timestamp = attrgetter("timestamp")
_timestamp_type = attrgetter("timestamp_type")
_key = attrgetter("key")
_value = attrgetter("value")
_headers = attrgetter("headers")


def _sizes(fields: list[bytes | None]) -> Iterator[int]:
    """Serialized sizes as kafka-python reports them: -1 for a null key or value."""
    if None in fields:
        return (-1 if field is None else len(field) for field in fields)
    return map(len, fields)  # type: ignore[arg-type]


class _Prepended:
    """`records` with `batch`, taken from them already, put back in front (the MemoryRecords
    interface that kafka-python's decoding reads)."""

    def __init__(self, batch: Any, records: Any) -> None:
        self._batch, self._records = batch, records

    def next_batch(self) -> Any:
        if self._batch is None:
            return self._records.next_batch()
        batch, self._batch = self._batch, None
        return batch


def _c_records(batch: Any) -> Iterator[Any]:
    try:
        yield from CRecordBatch(bytes(batch._buffer))
    except CorruptRecordException as error:  # as kafka-python's own error, which poll() raises
        raise CorruptRecordError(f"batch at offset {batch.base_offset}: {error}") from error


def _header_size(headers: list[tuple[str, bytes | None]]) -> int:
    if not headers:
        return -1
    return sum(
        len(key.encode()) + (len(value) if value is not None else 0) for key, value in headers
    )


def use_c_record_decoder(consumer: KafkaConsumer) -> bool:
    """Have `consumer` decode record batches in C; False (and kafka-python's decoding) if this
    aiokafka or kafka-python cannot."""
    fetcher = getattr(consumer, "_fetcher", None)
    usable = (
        CRecordBatch is not None
        and isinstance(fetcher, Fetcher)
        and "_buffer" in getattr(DefaultRecordBatch, "__slots__", ())
    )
    if not usable:
        logger.warning("Kafka records decoded by kafka-python (no C decoder available)")
        return False
    fetcher.PartitionRecords = CDecodedPartitionRecords  # type: ignore[union-attr]
    logger.info("Kafka records decoded in C (aiokafka's record decoder)")
    return True
