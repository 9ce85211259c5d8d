"""The consumer's database role (`sentiment_writer`, migration 0003): insert and read only."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg2
import psycopg2.errors
import pytest
from psycopg2 import sql

from consumer.batch import RESULT_COLUMNS
from consumer.store import ResultStore
from schemas.migrate import apply_migrations

pytestmark = pytest.mark.integration


def _as_user(dsn: str, user: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password, safe='')}@{host}"))


@pytest.fixture
def writer_dsn(fresh_database: str) -> Iterator[str]:
    """A fresh login user whose only privileges come from `GRANT sentiment_writer`."""
    user = f"writer_{uuid.uuid4().hex[:12]}"
    password = secrets.token_urlsafe(16)
    admin = psycopg2.connect(fresh_database)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = 'sentiment_writer'")
        assert cursor.fetchone(), "migration 0003 did not create the sentiment_writer role"
        cursor.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(user)), (password,)
        )
        cursor.execute(sql.SQL("GRANT sentiment_writer TO {}").format(sql.Identifier(user)))
    try:
        yield _as_user(fresh_database, user, password)
    finally:
        with admin.cursor() as cursor:
            # Roles are cluster-wide: end the user's sessions, then drop it.
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (user,),
            )
            cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))
        admin.close()


def _row(post_id: str) -> tuple[object, ...]:
    values = {
        "post_id": post_id,
        "text": "a post",
        "label": "positive",
        "positive_probability": 0.9,
        "confidence": 0.9,
        "model_version": "test",
        "cached": False,
        "author": None,
        "source": None,
        "lang": None,
        "metadata": "{}",
        "created_at": None,
        "produced_at": None,
        "processed_at": datetime.now(UTC),
        "kafka_topic": "posts",
        "kafka_partition": 0,
        "kafka_offset": 1,
    }
    return tuple(values[column] for column in RESULT_COLUMNS)


def test_writer_can_store_and_read_results_through_the_service_store(writer_dsn: str) -> None:
    store = ResultStore(writer_dsn)
    try:
        dead_letter = ("posts", 0, 7, "malformed_json", "bad", b"{", 1, datetime.now(UTC))
        assert store.write([_row("a"), _row("b")], [dead_letter]) == 2
        assert store.write([_row("a")]) == 0  # ON CONFLICT DO NOTHING needs no UPDATE right
        assert store.known_dead_letters([("posts", 0, 7)]) == {("posts", 0, 7)}
    finally:
        store.close()
    with psycopg2.connect(writer_dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT post_id FROM results ORDER BY post_id")
        assert cursor.fetchall() == [("a",), ("b",)]
        cursor.execute("SELECT label, posts FROM label_counts_per_minute")
        assert cursor.fetchall() == [("positive", 2)]
    connection.close()


def test_writer_cannot_migrate_so_deployments_migrate_separately(writer_dsn: str) -> None:
    """Even with nothing pending, the migrator's CREATE TABLE IF NOT EXISTS needs CREATE on the
    schema: a consumer logging in as the writer must run with SENTIMENT_MIGRATE_ON_START=false
    and leave migrations to the owner (the Kubernetes Job, compose's init-db)."""
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        apply_migrations(writer_dsn)
    root = Path(__file__).resolve().parents[2]
    for deployment in ("k8s/base/configmap.yaml", "docker-compose.yml"):
        text = (root / deployment).read_text()
        assert 'SENTIMENT_MIGRATE_ON_START: "false"' in text, deployment


FORBIDDEN = {
    "update": "UPDATE results SET label = 'negative'",
    "delete": "DELETE FROM results",
    "truncate": "TRUNCATE results",
    "drop": "DROP TABLE results",
    "alter": "ALTER TABLE results ADD COLUMN x int",
    "create table": "CREATE TABLE stolen (x int)",
    "create schema": "CREATE SCHEMA stolen",
    "update dead letters": "UPDATE dead_letters SET reason = 'x'",
    "delete dead letters": "DELETE FROM dead_letters",
    "forge a migration": "INSERT INTO schema_migrations (name, checksum) VALUES ('x', 'y')",
    "create role": "CREATE ROLE intruder",
    "grant the role on": "GRANT sentiment_writer TO CURRENT_USER",
    "read the catalogue of passwords": "SELECT rolpassword FROM pg_authid",
    "server files": "SELECT pg_read_file('postgresql.conf')",
}


@pytest.mark.parametrize("statement", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_writer_cannot_run_a_forbidden_statement(
    writer_dsn: str, fresh_database: str, statement: str
) -> None:
    with psycopg2.connect(fresh_database) as admin, admin.cursor() as cursor:
        execute = "INSERT INTO results ({}) VALUES ({})".format(
            ", ".join(RESULT_COLUMNS), ", ".join(["%s"] * len(RESULT_COLUMNS))
        )
        cursor.execute(execute, _row("kept"))
    admin.close()
    connection = psycopg2.connect(writer_dsn)
    try:
        with pytest.raises(psycopg2.errors.InsufficientPrivilege), connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()
    with psycopg2.connect(fresh_database) as admin, admin.cursor() as cursor:
        cursor.execute("SELECT post_id, label FROM results")
        assert cursor.fetchall() == [("kept", "positive")]
    admin.close()
