"""PostgreSQL writer: one transaction per batch, idempotent on post id."""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2.extras import execute_values

from consumer.batch import DEAD_LETTER_COLUMNS, RESULT_COLUMNS

logger = logging.getLogger(__name__)

# Results go in by COPY into a per-connection temporary table, then one INSERT ... SELECT
# with ON CONFLICT: half the database time and a third of the client CPU of a multi-row
# INSERT (execute_values), which adapts every value in Python.
_STAGE = "incoming_results"
_COLUMNS = ", ".join(RESULT_COLUMNS)
_CREATE_STAGE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} ON COMMIT DELETE ROWS "
    f"AS SELECT {_COLUMNS} FROM results WITH NO DATA"
)
_INSERT_FROM_STAGE = (
    f"INSERT INTO results ({_COLUMNS}) SELECT {_COLUMNS} FROM {_STAGE} "
    "ON CONFLICT (post_id) DO NOTHING RETURNING post_id"
)
_INSERT_DEAD_LETTERS = (
    f"INSERT INTO dead_letters ({', '.join(DEAD_LETTER_COLUMNS)}) VALUES %s ON CONFLICT DO NOTHING"
)
_KNOWN_DEAD_LETTERS = (
    "SELECT source_topic, source_partition, source_offset FROM dead_letters "
    "WHERE (source_topic, source_partition, source_offset) IN %s"
)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_needs_escape = re.compile(r"[\\\t\n\r]").search


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
    columns = [_copy_column(column) for column in zip(*rows, strict=True)]
    return "".join(line + "\n" for line in map("\t".join, zip(*columns, strict=True)))


class StoreUnavailable(RuntimeError):
    """The write did not happen; retry later (offsets must not be committed)."""


class ResultStore:
    def __init__(self, dsn: str, connect_timeout_seconds: int = 3) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout_seconds
        self._connection: psycopg2.extensions.connection | None = None

    def write(
        self,
        results: Sequence[tuple[object, ...]],
        dead_letters: Sequence[tuple[object, ...]] = (),
    ) -> int:
        """Insert a batch's rows in one transaction; return how many results were new."""
        if not results and not dead_letters:
            return 0
        try:
            connection = self._connect()
            with connection, connection.cursor() as cursor:
                inserted = []
                if results:
                    cursor.copy_from(
                        io.StringIO(copy_text(results)), _STAGE, columns=RESULT_COLUMNS
                    )
                    cursor.execute(_INSERT_FROM_STAGE)
                    inserted = cursor.fetchall()
                if dead_letters:
                    execute_values(cursor, _INSERT_DEAD_LETTERS, dead_letters)
            return len(inserted)
        except psycopg2.Error as error:
            self.close()
            raise StoreUnavailable(f"database write failed: {error}".strip()) from error

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
            connection = psycopg2.connect(self._dsn, connect_timeout=self._connect_timeout)
        except psycopg2.Error:
            return False
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
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
            self._connection = psycopg2.connect(
                self._dsn,
                connect_timeout=self._connect_timeout,
                application_name="sentiment-consumer",
            )
            with self._connection, self._connection.cursor() as cursor:
                cursor.execute(_CREATE_STAGE)
        return self._connection
