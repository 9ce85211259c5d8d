"""ResultStore against a real PostgreSQL: COPY-based writes keep every value exactly."""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import psycopg2
import pytest
from psycopg2.extensions import make_dsn

from consumer.batch import RESULT_COLUMNS
from consumer.store import RESULT_COLUMN_TYPES, ResultStore, StoreUnavailable

HOSTILE_TEXTS = [
    "tab\there",
    "new\nline and carriage\rreturn",
    "back\\slash \\N \\. \\t literal",
    "\\",
    "quotes ' \" and ; DROP TABLE results; --",
    "emoji \U0001f600 and ümlauts, 日本語, RTL \u202e",
    "\\.",
]


def _row(post_id: str, text: str, **overrides: object) -> tuple[object, ...]:
    now = datetime(2026, 11, 22, 4, 30, tzinfo=UTC)
    values: dict[str, object] = {
        "post_id": post_id,
        "text": text,
        "label": "negative",
        "positive_probability": 0.123456,
        "confidence": 0.75,
        "model_version": "bilstm-test",
        "cached": True,
        "author": None,
        "source": "tests",
        "lang": None,
        "metadata": '{"k": "v\\tw", "n": 1}',
        "created_at": now - timedelta(hours=1),
        "produced_at": now.astimezone(timezone(timedelta(hours=5, minutes=30))),
        "processed_at": now,
        "kafka_topic": "posts",
        "kafka_partition": 3,
        "kafka_offset": 2**40,
        **overrides,
    }
    return tuple(values[column] for column in RESULT_COLUMNS)


@pytest.mark.parametrize("client_encoding", [None, "LATIN1"])
def test_values_round_trip_exactly(
    database_factory: Callable[..., str], client_encoding: str | None
) -> None:
    dsn = database_factory()
    # The COPY data goes as UTF-8 bytes, even for a DSN that asks for another encoding.
    given = make_dsn(dsn, client_encoding=client_encoding) if client_encoding else dsn
    store = ResultStore(given)
    rows = [_row(f"post-{i}", text) for i, text in enumerate(HOSTILE_TEXTS)]
    rows.append(_row("nulls", "plain", created_at=None, source=None, kafka_partition=None))

    assert store.write(rows) == len(rows)

    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(RESULT_COLUMNS)} FROM results ORDER BY post_id")
        stored = {row[0]: row for row in cursor.fetchall()}
    connection.close()
    for expected in rows:
        got = dict(zip(RESULT_COLUMNS, stored[expected[0]], strict=True))
        want = dict(zip(RESULT_COLUMNS, expected, strict=True))
        assert got.pop("metadata") == {"k": "v\tw", "n": 1}
        want.pop("metadata")
        assert abs(got.pop("positive_probability") - want.pop("positive_probability")) < 1e-6
        assert got == want
    store.close()


def test_the_writer_knows_every_column_type_of_the_table(
    database_factory: Callable[..., str],
) -> None:
    # Binary COPY sends each value in its column's format: a type changed by a migration but
    # not in RESULT_COLUMN_TYPES would be refused, or read as something else.
    dsn = database_factory()
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute"
            " WHERE attrelid = 'results'::regclass AND attnum > 0 AND NOT attisdropped"
        )
        table = dict(cursor.fetchall())
    connection.close()
    short = {"timestamp with time zone": "timestamptz"}
    types = {name: short.get(pg_type, pg_type) for name, pg_type in table.items()}
    assert {name: types[name] for name in RESULT_COLUMNS} == RESULT_COLUMN_TYPES


def test_rewriting_a_batch_adds_nothing_and_reports_only_new_rows(
    database_factory: Callable[..., str],
) -> None:
    dsn = database_factory()
    store = ResultStore(dsn)
    assert store.write([_row("a", "first"), _row("b", "second")]) == 2
    # A replay after a crash: one old post, one new; the old row keeps its first text.
    assert store.write([_row("b", "second, again"), _row("c", "third")]) == 1
    # The staging table goes at commit: a second replay stages again, and nothing leaks into
    # the next batch, which is copied straight in.
    assert store.write([_row("c", "third, again")]) == 0
    assert store.write([_row("d", "fourth")]) == 1

    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT post_id, text FROM results ORDER BY post_id")
        assert cursor.fetchall() == [
            ("a", "first"),
            ("b", "second"),
            ("c", "third"),
            ("d", "fourth"),
        ]
    connection.close()
    store.close()


def test_a_write_that_waits_on_a_lock_fails_at_the_statement_timeout(
    database_factory: Callable[..., str],
) -> None:
    # A database that hangs must become an error the service retries, not a loop that waits
    # for ever (and stops polling, and leaves the group).
    dsn = database_factory()
    store = ResultStore(dsn, statement_timeout_seconds=1)
    blocker = psycopg2.connect(dsn)
    with blocker.cursor() as cursor:
        cursor.execute("LOCK TABLE results IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="statement timeout"):
            store.write([_row("a", "waits")])
        assert time.monotonic() - started < 10
    blocker.rollback()  # the lock goes; the retry stores the row
    blocker.close()
    assert store.write([_row("a", "waits")]) == 1
    store.close()
