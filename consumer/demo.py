"""The main job on the embedded stack: stack → consumers → replay → summary.

Everything runs on this machine: a Kafka-compatible broker, Redis and PostgreSQL from PyPI
wheels (see `devstack`), N consumer processes, and the replay producer.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import psycopg2

from consumer.processes import ConsumerProcess, service_env
from producer.pacing import Pacer
from producer.publisher import looped, make_producer, replay
from producer.settings import ProducerSettings
from producer.sources import SourceError, read_rows

logger = logging.getLogger(__name__)

DEFAULT_DATA = Path("../shared/data/sentiment140/part-001.csv.gz")


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"data set to replay (default {DEFAULT_DATA})",
    )
    parser.add_argument("--limit", type=int, default=20_000, help="posts to replay (20,000)")
    parser.add_argument("--consumers", type=int, default=2, help="consumer processes (2)")
    parser.add_argument("--rate", type=float, help="posts/s (default: as fast as possible)")
    parser.add_argument("--first-http-port", type=int, default=8000)
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the consumers up after the summary (Ctrl-C stops)",
    )
    parser.add_argument(
        "--stop-stack",
        action="store_true",
        help="stop the embedded stack at the end (default: leave it up to query the results)",
    )


def data_problem(path: Path) -> str | None:
    """Why `path` cannot be replayed, or None if it holds at least one row."""
    if not path.exists():
        return f"no data at {path}: give a data set with --data"
    try:
        if next(read_rows(path), None) is None:
            return f"no rows to replay in {path}"
    except SourceError as error:
        return f"cannot replay {path}: {error}"
    return None


def run_demo(args: argparse.Namespace) -> int:
    from devstack import EmbeddedStack, StackConfig

    problem = data_problem(args.data)
    if problem:  # before the stack starts, not after
        raise SystemExit(problem)
    config = StackConfig()
    with ExitStack() as cleanup:
        stack = EmbeddedStack(config)
        endpoints = stack.start()
        if args.stop_stack:
            cleanup.callback(stack.stop)
        print(
            f"stack up: kafka {endpoints.kafka_bootstrap}, redis {endpoints.redis_url}, "
            f"postgres {endpoints.redacted()['postgres']}"
        )
        env = service_env(
            endpoints.kafka_bootstrap,
            endpoints.redis_url,
            endpoints.postgres_dsn,
            posts_topic=config.posts_topic,
            dead_letter_topic=config.dead_letter_topic,
            group_id="demo",
            log_format="text",
        )
        consumers = [
            ConsumerProcess(
                env, args.first_http_port + i, config.state_dir / "logs" / f"consumer-{i}.log"
            )
            for i in range(args.consumers)
        ]
        for consumer in consumers:
            consumer.start()
            cleanup.callback(consumer.stop)
        for consumer in consumers:
            consumer.wait_ready()
        # Replay once the group owns every partition, so that the summary's latencies are the
        # stream's, not the group join's (seconds on the embedded broker).
        wait_until_assigned(consumers, config.topics[config.posts_topic])
        print(
            f"{len(consumers)} consumers ready: " + ", ".join(f"{c.url}/metrics" for c in consumers)
        )

        started = datetime.now(UTC)
        settings = ProducerSettings(
            kafka_bootstrap_servers=endpoints.kafka_bootstrap, posts_topic=config.posts_topic
        )
        producer = make_producer(settings)
        try:
            report = replay(
                producer,
                config.posts_topic,
                looped(args.data, "auto", loop=True),
                source="demo",
                limit=args.limit,
                pacer=Pacer(args.rate),
            )
        except SourceError as error:
            print(f"cannot replay {args.data}: {error}", file=sys.stderr)
            return 1
        finally:
            producer.close()
        if report.sent == 0:
            print(
                f"nothing to replay in {args.data}: {report.rows_read} rows read, "
                f"{report.skipped} skipped {dict(report.skip_reasons)}",
                file=sys.stderr,
            )
            return 1
        print(
            f"replayed {report.delivered:,} posts at {report.rate:,.0f} posts/s "
            f"({report.failed} failed)"
        )
        wait_until_handled(consumers, report.delivered)
        print(summary(endpoints.postgres_dsn, consumers, started))
        if args.keep_running:
            print("consumers keep running; Ctrl-C to stop")
            _sleep_forever()
    return 0 if report.failed == 0 else 1


def wait_until_assigned(
    consumers: list[ConsumerProcess], partitions: int, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owned = sum(c.metrics().get("sentiment_assigned_partitions", 0) for c in consumers)
        if owned >= partitions:
            return
        time.sleep(0.2)
    logger.warning("the group owns fewer than %d partitions after %.0f s", partitions, timeout)


def handled(consumer: ConsumerProcess) -> float:
    values = consumer.metrics()
    dead = sum(v for k, v in values.items() if k.startswith("sentiment_dead_letters_total{"))
    return (
        values.get("sentiment_results_stored_total", 0)
        + values.get("sentiment_duplicate_posts_total", 0)
        + dead
    )


def wait_until_handled(
    consumers: list[ConsumerProcess], expected: int, timeout: float = 600
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = sum(handled(consumer) for consumer in consumers)
        if done >= expected:
            return
        time.sleep(0.5)
    raise TimeoutError(f"only {done:,.0f} of {expected:,} posts stored after {timeout}s")


SUMMARY_SQL = """
SELECT count(*),
       extract(epoch FROM max(stored_at) - min(produced_at)),
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
           ORDER BY extract(epoch FROM stored_at - produced_at)),
       count(*) FILTER (WHERE label = 'negative'),
       count(*) FILTER (WHERE label = 'neutral'),
       count(*) FILTER (WHERE label = 'positive')
FROM results WHERE produced_at >= %s
"""


def summary(dsn: str, consumers: list[ConsumerProcess], since: datetime) -> str:
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(SUMMARY_SQL, (since,))
        rows, seconds, percentiles, negative, neutral, positive = cursor.fetchone()
    hits = misses = duplicates = 0.0
    for consumer in consumers:
        values = consumer.metrics()
        hits += values.get("sentiment_cache_requests_total{result=hit}", 0)
        misses += values.get("sentiment_cache_requests_total{result=miss}", 0)
        duplicates += values.get("sentiment_duplicate_posts_total", 0)
    p50, p95, p99 = (value * 1000 for value in percentiles) if percentiles else (0, 0, 0)
    rate = rows / seconds if seconds else 0.0
    hit_rate = hits / (hits + misses) if hits + misses else 0.0
    return "\n".join(
        [
            "",
            f"stored {rows:,} new rows, {rate:,.0f} posts/s from first produce to last commit",
            *(
                [
                    f"{duplicates:,.0f} posts were already stored by an earlier run (post ids"
                    " are stable per file); for an empty table: `python -m devstack down`,"
                    " then delete .stack/"
                ]
                if duplicates
                else []
            ),
            f"produce-to-stored latency: p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms",
            f"cache hit rate {hit_rate:.1%} (distinct texts per batch)",
            f"labels: negative {negative:,}, neutral {neutral:,}, positive {positive:,}",
            "results are in the `results` table; try:",
            "  .venv/bin/python -m consumer results recent",
            "  .venv/bin/python -m consumer results counts --minutes 60",
            "  .venv/bin/python -m consumer results negative",
        ]
    )


def _sleep_forever() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
