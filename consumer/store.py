"""PostgreSQL writer: one transaction per batch, idempotent on post id."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2.extensions import parse_dsn
from psycopg2.extras import execute_values

from consumer.batch import DEAD_LETTER_COLUMNS, RESULT_COLUMNS

logger = logging.getLogger(__name__)

# Results go in by COPY straight into the table: a third less database CPU per row than COPY
# into a temporary table and INSERT ... SELECT ... ON CONFLICT, which is kept for the batch
# that COPY refuses because a post in it is already stored (a batch delivered again after a
# crash or a rebalance). COPY is also a third of the client CPU of a multi-row INSERT
# (execute_values), which adapts every value in Python. A column that holds one value in the
# whole batch (the model version, the processing time, NULL authors, ...) is formatted once and
# appended to every line.
_STAGE = "incoming_results"
_COLUMNS = ", ".join(RESULT_COLUMNS)
_CREATE_STAGE = (
    f"CREATE TEMPORARY TABLE {_STAGE} ON COMMIT DROP AS SELECT {_COLUMNS} FROM results WITH NO DATA"
)
_MERGE_STAGE = (
    f"WITH inserted AS (INSERT INTO results ({_COLUMNS}) SELECT {_COLUMNS} FROM {_STAGE} "
    "ON CONFLICT (post_id) DO NOTHING RETURNING 1) SELECT count(*) FROM inserted"
)
# Always formatted per row: with one row, every column holds a single value.
_KEY_COLUMN = RESULT_COLUMNS.index("post_id")
_INSERT_DEAD_LETTERS = (
    f"INSERT INTO dead_letters ({', '.join(DEAD_LETTER_COLUMNS)}) VALUES %s ON CONFLICT DO NOTHING"
)
_KNOWN_DEAD_LETTERS = (
    "SELECT source_topic, source_partition, source_offset FROM dead_letters "
    "WHERE (source_topic, source_partition, source_offset) IN %s"
)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _needs_escape(text: str) -> bool:
    # Four substring searches rather than one character class: over a batch's joined texts,
    # 4 µs against 0.4 ms (the searches skip ahead; the expression tests every character).
    return "\\" in text or "\t" in text or "\n" in text or "\r" in text


@lru_cache(maxsize=4096)
def _timestamp(value: datetime) -> str:
    # isoformat() costs microseconds, and a batch shares processed_at and many produced_at.
    return value.isoformat()


def copy_field(value: object) -> str:
    """One value in PostgreSQL's COPY text format (tab-separated, \\N for NULL)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES) if _needs_escape(value) else value
    if isinstance(value, datetime):
        return _timestamp(value)
    return str(value)


def _copy_column(values: Sequence[Any]) -> list[str]:
    """A column's values in COPY text format.

    A column holds one type (and maybe NULLs), so it is formatted without a Python call per
    value: per-value dispatch took as long as the rest of the writer's work.
    """
    kinds = set(map(type, values))
    if kinds == {datetime}:
        return list(map(_timestamp, values))
    if len(kinds) == 1 and not kinds & {str, type(None)}:  # numbers, booleans
        return list(map(str, values))
    if kinds == {str} and not _needs_escape("".join(values)):
        return list(values)
    if kinds <= {str, type(None)}:
        return [
            "\\N"
            if value is None
            else value.translate(_COPY_ESCAPES)
            if _needs_escape(value)
            else value
            for value in values
        ]
    return list(map(copy_field, values))


def copy_text(rows: Sequence[Sequence[object]]) -> str:
    return copy_columns(list(zip(*rows, strict=True)))


def copy_columns(columns: Sequence[Sequence[object]], line_end: str = "\n") -> str:
    """Rows in COPY text format, given column by column; `line_end` ends each line."""
    formatted = [_copy_column(column) for column in columns]
    lines = line_end.join(map("\t".join, zip(*formatted, strict=True)))
    return lines + line_end if lines else ""


def single_value_columns(columns: Sequence[Sequence[object]]) -> dict[int, object]:
    """Index -> value of each column (but the key) whose values are all the same."""
    return {
        index: column[0]
        for index, column in enumerate(columns)
        if index != _KEY_COLUMN and column and column.count(column[0]) == len(column)
    }


class StagedRows(NamedTuple):
    """A batch of result rows in COPY text format, in the column order `columns`: the columns
    that vary first, then the single-valued ones, whose values end every line alike."""

    columns: list[str]
    copy_text: str


def stage_columns(columns: Sequence[Sequence[object]]) -> StagedRows:
    """Result columns (in RESULT_COLUMNS order) as COPY text."""
    single = single_value_columns(columns)
    varying = [index for index in range(len(columns)) if index not in single]
    line_end = "".join("\t" + copy_field(value) for value in single.values()) + "\n"
    return StagedRows(
        columns=[RESULT_COLUMNS[index] for index in [*varying, *single]],
        copy_text=copy_columns([columns[index] for index in varying], line_end),
    )


# psycopg2 reads the COPY data in pieces of this size. Bytes in a few large pieces: a batch's
# text read 8 kB at a time, each piece encoded on its own, took a fifth more of the writer's CPU.
_COPY_READ_BYTES = 1 << 20


def _copy_into(cursor: psycopg2.extensions.cursor, table: str, staged: StagedRows) -> None:
    data = io.BytesIO(staged.copy_text.encode())
    cursor.copy_from(data, table, columns=staged.columns, size=_COPY_READ_BYTES)


def _copy(cursor: psycopg2.extensions.cursor, staged: StagedRows) -> int:
    """COPY into the table itself; raises UniqueViolation if a post is stored already."""
    _copy_into(cursor, "results", staged)
    return int(cursor.rowcount)


def _merge(cursor: psycopg2.extensions.cursor, staged: StagedRows) -> int:
    """COPY into a temporary table, then insert the posts not stored yet; returns how many."""
    cursor.execute(_CREATE_STAGE)
    _copy_into(cursor, _STAGE, staged)
    cursor.execute(_MERGE_STAGE)
    (inserted,) = cursor.fetchone()  # type: ignore[misc]
    return int(inserted)


class StoreUnavailable(RuntimeError):
    """The write did not happen; retry later (offsets must not be committed)."""


# A database that hangs rather than fails must become an error the service retries: a write
# that waits for ever stops the loop (which stops polling, and leaves the group) and shutdown.
# Lock waits end at the statement timeout; a peer gone silent at the TCP keepalive (5 + 3 x 2 s).
STATEMENT_TIMEOUT_SECONDS = 30.0
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


def connection_options(dsn: str) -> dict[str, object]:
    """The keepalive settings the DSN does not make itself."""
    given = parse_dsn(dsn)
    return {name: value for name, value in _KEEPALIVES.items() if name not in given}


class ResultStore:
    def __init__(
        self,
        dsn: str,
        connect_timeout_seconds: int = 3,
        statement_timeout_seconds: float = STATEMENT_TIMEOUT_SECONDS,
    ) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout_seconds
        self._statement_timeout_ms = int(statement_timeout_seconds * 1000)
        self._connection: psycopg2.extensions.connection | None = None

    def write(
        self,
        results: Sequence[tuple[object, ...]],
        dead_letters: Sequence[tuple[object, ...]] = (),
    ) -> int:
        """`write_columns` for results given row by row."""
        return self.write_columns(
            [list(column) for column in zip(*results, strict=True)], dead_letters
        )

    def write_columns(
        self,
        results: Sequence[Sequence[object]],
        dead_letters: Sequence[tuple[object, ...]] = (),
    ) -> int:
        """Insert a batch in one transaction; return how many results were new.

        `results` holds the results column by column, in RESULT_COLUMNS order ([] for none).
        """
        staged = stage_columns(results) if results and results[0] else None
        if staged is None and not dead_letters:
            return 0
        try:
            try:
                return self._transaction(staged, dead_letters, all_new=True)
            except psycopg2.errors.UniqueViolation:
                # A post of the batch is stored already: the batch came again after a crash or
                # a rebalance. The transaction was rolled back; merge the batch instead.
                return self._transaction(staged, dead_letters, all_new=False)
        except psycopg2.Error as error:
            self.close()
            raise StoreUnavailable(f"database write failed: {error}".strip()) from error

    def _transaction(
        self,
        staged: StagedRows | None,
        dead_letters: Sequence[tuple[object, ...]],
        all_new: bool,
    ) -> int:
        connection = self._connect()
        with connection, connection.cursor() as cursor:
            inserted = 0
            if staged is not None:
                inserted = _copy(cursor, staged) if all_new else _merge(cursor, staged)
            if dead_letters:
                execute_values(cursor, _INSERT_DEAD_LETTERS, dead_letters)
        return inserted

    def known_dead_letters(
        self, positions: Sequence[tuple[str, int, int]]
    ) -> set[tuple[str, int, int]]:
        """Which source positions were already dead-lettered (by an earlier run)."""
        if not positions:
            return set()
        try:
            connection = self._connect()
            with connection, connection.cursor() as cursor:
                cursor.execute(_KNOWN_DEAD_LETTERS, (tuple(positions),))
                return {tuple(row) for row in cursor.fetchall()}  # type: ignore[misc]
        except psycopg2.Error as error:
            self.close()
            raise StoreUnavailable(f"database read failed: {error}".strip()) from error

    def ping(self) -> bool:
        """A fresh connection, so that health checks from another thread never share ours."""
        try:
            connection = psycopg2.connect(
                self._dsn, connect_timeout=self._connect_timeout, **connection_options(self._dsn)
            )
        except psycopg2.Error:
            return False
        try:
            with connection.cursor() as cursor:
                # A database that takes connections but does not answer must not hold a probe.
                cursor.execute("SET statement_timeout = 2000; SELECT 1")
            return True
        except psycopg2.Error:
            return False
        finally:
            connection.close()

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg2.Error):
                self._connection.close()
            self._connection = None

    def _connect(self) -> psycopg2.extensions.connection:
        if self._connection is None or self._connection.closed:
            connection = psycopg2.connect(
                self._dsn,
                connect_timeout=self._connect_timeout,
                application_name="sentiment-consumer",
                # The COPY data is sent as UTF-8 bytes (_copy_into), whatever the server's
                # default client encoding.
                client_encoding="UTF8",
                **connection_options(self._dsn),
            )
            try:
                with connection, connection.cursor() as cursor:
                    cursor.execute("SET statement_timeout = %s", (self._statement_timeout_ms,))
            except psycopg2.Error:
                connection.close()
                raise
            self._connection = connection
        return self._connection
