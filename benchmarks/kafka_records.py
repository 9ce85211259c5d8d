"""Decoding Kafka records: kafka-python's own decoder against the C one (consumer.records).

    python -m benchmarks.kafka_records            # a few seconds

Both take the records of the same fetched bytes (tweets encoded as the producer encodes posts,
in batches as a producer makes them) the way kafka-python's fetcher does in poll(): record
tuples out of a partition's fetched data. Prints µs per record, best of 5.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from kafka.consumer.fetcher import Fetcher
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder
from kafka.structs import TopicPartition

from benchmarks.e2e import DATA_DIR, load_tweets
from common.cli import documented_parser
from consumer.records import CDecodedPartitionRecords
from producer.publisher import encode
from schemas.messages import IncomingPost

RECORDS_PER_BATCH = 500


def fetched_bytes(texts: list[str]) -> bytes:
    """The posts as a fetch returns them: record batches of RECORDS_PER_BATCH, back to back."""
    data = b""
    for start in range(0, len(texts), RECORDS_PER_BATCH):
        builder = MemoryRecordsBuilder(
            magic=2, compression_type=0, batch_size=1 << 24, offset=start
        )
        for i, text in enumerate(texts[start : start + RECORDS_PER_BATCH], start):
            value = encode(IncomingPost(post_id=f"bench-{i}", text=text))
            builder.append(
                timestamp=1_764_700_000_000 + i, key=f"bench-{i}".encode(), value=value, headers=[]
            )
        builder.close()
        data += bytes(builder.buffer())
    return data


def us_per_record(kind: type, data: bytes, count: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        taken = kind(0, TopicPartition("posts", 0), MemoryRecords(data)).take()
        best = min(best, time.perf_counter() - started)
        assert len(taken) == count
    return best / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = documented_parser("python -m benchmarks.kafka_records", __doc__)
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="folder of tweet CSVs")
    parser.add_argument("--posts", type=int, default=20_000)
    args = parser.parse_args(argv)
    texts = load_tweets(args.data, args.posts)
    data = fetched_bytes(texts)
    result = {
        "records": len(texts),
        "kafka_python_us_per_record": round(
            us_per_record(Fetcher.PartitionRecords, data, len(texts)), 2
        ),
        "c_us_per_record": round(us_per_record(CDecodedPartitionRecords, data, len(texts)), 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
