"""How long a kafka-python poll() takes while another thread keeps the GIL busy.

    python -m benchmarks.poll_contention          # about a minute

kafka-python 3 runs its network I/O on a thread of its own; a poll() from the main thread
hands tasks to that thread and waits for them. When a third thread runs Python (in the
consumer: the inference thread), each hand-over waits for the GIL, up to the interpreter's
switch interval. This fills a topic on the embedded broker, then drains it in polls of 256
records with 40 ms of Python work per poll (about what the consumer's main thread does with
a batch), with and without a busy thread, at several switch intervals.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from kafka import KafkaConsumer, KafkaProducer

from benchmarks.e2e import embedded_stack
from common.cli import documented_parser

RECORDS = 30_000
POLL_RECORDS = 256
WORK_PER_POLL_S = 0.040


def fill(bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024)
    value = json.dumps({"post_id": "x", "text": "a tweet of about sixty characters, give or take"})
    for i in range(RECORDS):
        producer.send(topic, value.encode(), key=str(i).encode())
    producer.flush()
    producer.close()


def busy_python(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(1000))


def drain(bootstrap: str, topic: str, busy_thread: bool, switch_interval: float) -> dict:  # type: ignore[type-arg]
    sys.setswitchinterval(switch_interval)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{time.monotonic_ns()}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=POLL_RECORDS,
        session_timeout_ms=6000,
        max_poll_interval_ms=10000,
    )
    stop = threading.Event()
    if busy_thread:
        threading.Thread(target=busy_python, args=(stop,), daemon=True).start()
    received, polls, in_poll, started = 0, 0, 0.0, None
    while received < RECORDS:
        before = time.perf_counter()
        count = sum(map(len, consumer.poll(timeout_ms=5, max_records=POLL_RECORDS).values()))
        if count and started is None:
            started = before  # from the first records on: the group join is not measured
        if started is not None:
            polls, in_poll = polls + 1, in_poll + time.perf_counter() - before
        received += count
        work_until = time.perf_counter() + WORK_PER_POLL_S * count / POLL_RECORDS
        while time.perf_counter() < work_until:
            pass
    assert started is not None
    total = time.perf_counter() - started
    stop.set()
    consumer.close()
    return {
        "busy_thread": busy_thread,
        "switch_interval_ms": switch_interval * 1000,
        "polls": polls,
        "ms_per_poll": round(in_poll / polls * 1000, 2),
        "share_in_poll": round(in_poll / total, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = documented_parser("python -m benchmarks.poll_contention", __doc__)
    parser.add_argument("--intervals-ms", type=float, nargs="+", default=[5.0, 1.0, 0.5])
    args = parser.parse_args(argv)
    with embedded_stack("poll-") as (stack, _):
        bootstrap = stack.endpoints.kafka_bootstrap
        stack.create_topics({"posts": 6})
        fill(bootstrap, "posts")
        runs = [(False, 0.005)] + [(True, ms / 1000) for ms in args.intervals_ms]
        for busy, interval in runs:
            print(json.dumps(drain(bootstrap, "posts", busy, interval)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
