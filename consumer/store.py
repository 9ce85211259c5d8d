"""PostgreSQL writer: one transaction per batch, idempotent on post id."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import psycopg2
import psycopg2.extensions
from psycopg2.extras import execute_values

from consumer.batch import DEAD_LETTER_COLUMNS, RESULT_COLUMNS

logger = logging.getLogger(__name__)

_INSERT_RESULTS = (
    f"INSERT INTO results ({', '.join(RESULT_COLUMNS)}) VALUES %s "
    "ON CONFLICT (post_id) DO NOTHING RETURNING post_id"
)
_INSERT_DEAD_LETTERS = (
    f"INSERT INTO dead_letters ({', '.join(DEAD_LETTER_COLUMNS)}) VALUES %s ON CONFLICT DO NOTHING"
)
_KNOWN_DEAD_LETTERS = (
    "SELECT source_topic, source_partition, source_offset FROM dead_letters "
    "WHERE (source_topic, source_partition, source_offset) IN %s"
)


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
                    inserted = execute_values(
                        cursor, _INSERT_RESULTS, results, page_size=len(results), fetch=True
                    )
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
        return self._connection
