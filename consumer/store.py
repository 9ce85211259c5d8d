"""PostgreSQL writer: one transaction per batch, idempotent on post id."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2.extensions import parse_dsn
from psycopg2.extras import execute_values

from consumer.batch import DEAD_LETTER_COLUMNS, RESULT_COLUMNS
from consumer.binary_copy import EncodedRows, encode_columns

logger = logging.getLogger(__name__)

# Results go in by COPY straight into the table: a third less database CPU per row than COPY
# into a temporary table and INSERT ... SELECT ... ON CONFLICT, which is kept for the batch
# that COPY refuses because a post in it is already stored (a batch delivered again after a
# crash or a rebalance). COPY is also a third of the client CPU of a multi-row INSERT
# (execute_values), which adapts every value in Python. The data is in COPY's binary format
# (consumer.binary_copy): less CPU than the text format on both sides, and no escaping.
_STAGE = "incoming_results"
_COLUMNS = ", ".join(RESULT_COLUMNS)
_CREATE_STAGE = (
    f"CREATE TEMPORARY TABLE {_STAGE} ON COMMIT DROP AS SELECT {_COLUMNS} FROM results WITH NO DATA"
)
_MERGE_STAGE = (
    f"WITH inserted AS (INSERT INTO results ({_COLUMNS}) SELECT {_COLUMNS} FROM {_STAGE} "
    "ON CONFLICT (post_id) DO NOTHING RETURNING 1) SELECT count(*) FROM inserted"
)
# The type of each column of `results` (schemas/migrations), in RESULT_COLUMNS order: binary
# COPY sends each value in its column's own format.
RESULT_COLUMN_TYPES: dict[str, str] = {
    "post_id": "text", "text": "text", "label": "text", "positive_probability": "real",
    "confidence": "real", "model_version": "text", "cached": "boolean", "author": "text",
    "source": "text", "lang": "text", "metadata": "jsonb", "created_at": "timestamptz",
    "produced_at": "timestamptz", "processed_at": "timestamptz", "kafka_topic": "text",
    "kafka_partition": "integer", "kafka_offset": "bigint",
}  # fmt: skip
_RESULT_TYPES = [RESULT_COLUMN_TYPES[name] for name in RESULT_COLUMNS]
_INSERT_DEAD_LETTERS = (
    f"INSERT INTO dead_letters ({', '.join(DEAD_LETTER_COLUMNS)}) VALUES %s ON CONFLICT DO NOTHING"
)
_KNOWN_DEAD_LETTERS = (
    "SELECT source_topic, source_partition, source_offset FROM dead_letters "
    "WHERE (source_topic, source_partition, source_offset) IN %s"
)


def encode_results(columns: Sequence[Sequence[object]]) -> EncodedRows:
    """Result columns (in RESULT_COLUMNS order) as binary COPY data."""
    return encode_columns(RESULT_COLUMNS, _RESULT_TYPES, columns)


# psycopg2 reads the COPY data in pieces of this size: a batch in one or a few pieces.
_COPY_READ_BYTES = 1 << 20


def _copy_into(cursor: psycopg2.extensions.cursor, table: str, rows: EncodedRows) -> None:
    statement = f"COPY {table} ({', '.join(rows.columns)}) FROM STDIN WITH (FORMAT binary)"
    cursor.copy_expert(statement, io.BytesIO(rows.data), size=_COPY_READ_BYTES)


def _copy(cursor: psycopg2.extensions.cursor, rows: EncodedRows) -> int:
    """COPY into the table itself; raises UniqueViolation if a post is stored already."""
    _copy_into(cursor, "results", rows)
    return int(cursor.rowcount)


def _merge(cursor: psycopg2.extensions.cursor, rows: EncodedRows) -> int:
    """COPY into a temporary table, then insert the posts not stored yet; returns how many."""
    cursor.execute(_CREATE_STAGE)
    _copy_into(cursor, _STAGE, rows)
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
        encoded = encode_results(results) if results and results[0] else None
        if encoded is None and not dead_letters:
            return 0
        try:
            try:
                return self._transaction(encoded, dead_letters, all_new=True)
            except psycopg2.errors.UniqueViolation:
                # A post of the batch is stored already: the batch came again after a crash or
                # a rebalance. The transaction was rolled back; merge the batch instead.
                return self._transaction(encoded, dead_letters, all_new=False)
        except psycopg2.Error as error:
            self.close()
            raise StoreUnavailable(f"database write failed: {error}".strip()) from error

    def _transaction(
        self,
        encoded: EncodedRows | None,
        dead_letters: Sequence[tuple[object, ...]],
        all_new: bool,
    ) -> int:
        connection = self._connect()
        with connection, connection.cursor() as cursor:
            inserted = 0
            if encoded is not None:
                inserted = _copy(cursor, encoded) if all_new else _merge(cursor, encoded)
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
