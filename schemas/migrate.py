"""Apply the versioned SQL files in `schemas/migrations/` once each, in name order.

Applied migrations are recorded in `schema_migrations` with a checksum; a file that changed
after it was applied is an error rather than a silent skip. An advisory lock makes concurrent
start-ups (several consumers at once) safe.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg2

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x5E171  # any constant shared by all migrators of this schema


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    return [Migration(path.name, path.read_text()) for path in sorted(directory.glob("*.sql"))]


def pending(migrations: list[Migration], applied: dict[str, str]) -> list[Migration]:
    """The migrations not yet applied; raises if an applied one was edited since."""
    for migration in migrations:
        recorded = applied.get(migration.name)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(f"{migration.name} changed after it was applied")
    return [m for m in migrations if m.name not in applied]


def apply_migrations(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply what is pending; return the names applied now (empty when up to date)."""
    migrations = load_migrations(directory)
    connection = psycopg2.connect(dsn)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cursor.execute("SELECT name, checksum FROM schema_migrations")
            todo = pending(migrations, dict(cursor.fetchall()))
            for migration in todo:
                logger.info("applying migration %s", migration.name)
                cursor.execute(migration.sql)
                cursor.execute(
                    "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)",
                    (migration.name, migration.checksum),
                )
    finally:
        connection.close()
    return [migration.name for migration in todo]
