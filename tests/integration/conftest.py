"""Real services for integration tests, and per-test names so tests never share state.

Where the services come from, in order:
1. `SENTIMENT_TEST_KAFKA_BOOTSTRAP`, `SENTIMENT_TEST_REDIS_URL` and `SENTIMENT_TEST_POSTGRES_DSN`
   when all three are set (your own servers; the DSN's user needs CREATEDB);
2. testcontainers, when a Docker engine answers;
3. the embedded stack (`devstack`) on free ports in a temporary folder, stopped at the end.
`SENTIMENT_TEST_STACK=embedded|testcontainers` forces 2 or 3.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from devstack import EmbeddedStack, StackConfig, StackEndpoints
from devstack import kafka as kafka_admin
from devstack.config import dsn_for_database
from devstack.postgres import apply_migrations, drop_database, ensure_database
from inference import DEFAULT_BUNDLE_PATH

logger = logging.getLogger(__name__)

ENV_ENDPOINTS = {
    "kafka_bootstrap": "SENTIMENT_TEST_KAFKA_BOOTSTRAP",
    "redis_url": "SENTIMENT_TEST_REDIS_URL",
    "postgres_dsn": "SENTIMENT_TEST_POSTGRES_DSN",
}
_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class Services:
    endpoints: StackEndpoints
    source: str  # "environment", "testcontainers" or "embedded"
    stack: EmbeddedStack | None = None


# ---- where the services come from ------------------------------------------------------


def _endpoints_from_env() -> StackEndpoints | None:
    values = {field: os.environ.get(var) for field, var in ENV_ENDPOINTS.items()}
    if not any(values.values()):
        return None
    missing = [ENV_ENDPOINTS[field] for field, value in values.items() if not value]
    if missing:
        wanted = ", ".join(ENV_ENDPOINTS.values())
        raise pytest.UsageError(f"set all of {wanted}; missing {', '.join(missing)}")
    return StackEndpoints(**values)  # type: ignore[arg-type]


def _docker_answers() -> bool:
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _free_ports(count: int) -> list[int]:
    """Distinct free ports: all sockets stay bound until every port is chosen."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _embedded() -> Iterator[Services]:
    # Not under pytest's basetemp: pytest resets that to 0700 at every session start, and
    # PostgreSQL runs as an unprivileged account when we are root.
    state_dir = Path(tempfile.mkdtemp(prefix="sentiment-stack-"))
    kafka_port, redis_port, postgres_port = _free_ports(3)
    config = StackConfig(
        state_dir=state_dir,
        kafka_port=kafka_port,
        redis_port=redis_port,
        postgres_port=postgres_port,
    )
    stack = EmbeddedStack(config)
    try:
        yield Services(stack.start(), "embedded", stack)
    finally:
        stack.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def _testcontainers() -> Iterator[Services]:
    try:
        from testcontainers.community.kafka import KafkaContainer
        from testcontainers.community.postgres import PostgresContainer
        from testcontainers.community.redis import RedisContainer
    except ImportError:  # testcontainers < 4.14 has no `community` namespace
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer
        from testcontainers.redis import RedisContainer

    with (
        KafkaContainer() as kafka,
        RedisContainer("redis:7-alpine") as redis_server,
        PostgresContainer("postgres:17-alpine") as postgres_server,
    ):
        host, port = redis_server.get_container_host_ip(), redis_server.get_exposed_port(6379)
        endpoints = StackEndpoints(
            kafka_bootstrap=kafka.get_bootstrap_server(),
            redis_url=f"redis://{host}:{port}/0",
            postgres_dsn=postgres_server.get_connection_url(driver=None),
        )
        yield Services(endpoints, "testcontainers")


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    forced = os.environ.get("SENTIMENT_TEST_STACK", "")
    from_env = _endpoints_from_env()
    if from_env is not None and not forced:
        yield Services(from_env, "environment")
    elif forced == "testcontainers" or (not forced and _docker_answers()):
        yield from _testcontainers()
    else:
        yield from _embedded()


# ---- session-wide --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stack_endpoints(services: Services) -> StackEndpoints:
    """Where the broker, Redis and PostgreSQL of this session answer."""
    return services.endpoints


@pytest.fixture
def embedded_stack(services: Services) -> EmbeddedStack:
    """The EmbeddedStack, for fault tests that stop, kill and restart servers.

    Skips the test when the services are not embedded. A test that stops a server must
    start it again (`start_service`); a broker restart recreates the topics it knew of.
    """
    if services.stack is None:
        pytest.skip(f"services come from {services.source}, not the embedded stack")
    return services.stack


# ---- per test: Kafka -------------------------------------------------------------------------


def _unique(prefix: str, request: pytest.FixtureRequest) -> str:
    test = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60].strip("-")
    return f"{prefix}-{test}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def topic_factory(
    services: Services, request: pytest.FixtureRequest
) -> Iterator[Callable[..., str]]:
    """`topic_factory(partitions=1) -> name`: a new topic, created on the broker."""
    created: list[str] = []

    def make(partitions: int = 1) -> str:
        name = _unique("t", request)
        if services.stack is not None:
            services.stack.create_topics({name: partitions})
        else:
            kafka_admin.create_topics(services.endpoints.kafka_bootstrap, {name: partitions})
        created.append(name)
        return name

    yield make
    # The embedded broker is thrown away at the end; only clean up servers we do not own.
    if created and services.stack is None:
        try:
            kafka_admin.delete_topics(services.endpoints.kafka_bootstrap, created)
        except Exception:
            logger.warning("could not delete test topics %s", created, exc_info=True)


@pytest.fixture
def group_id(request: pytest.FixtureRequest) -> str:
    """A consumer group id no other test uses."""
    return _unique("g", request)


@pytest.fixture
def consumer_options(stack_endpoints: StackEndpoints, group_id: str) -> dict[str, Any]:
    """kafka-python KafkaConsumer options: this test's group, manual commits, from the start.

    Tansu holds a new group's first join for about half the session timeout, so this keeps
    it short (about 3 s); the short poll interval bounds any rebalance wait likewise.
    """
    return {
        "bootstrap_servers": stack_endpoints.kafka_bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_interval_ms": 10_000,
        "session_timeout_ms": 6_000,
        "heartbeat_interval_ms": 1_000,
    }


# ---- per test: PostgreSQL --------------------------------------------------------------------


@pytest.fixture
def database_factory(stack_endpoints: StackEndpoints) -> Iterator[Callable[..., str]]:
    """`database_factory(migrated=True) -> dsn`: a new database `t_<hex>`, dropped afterwards."""
    admin_dsn = stack_endpoints.postgres_dsn
    created: list[str] = []

    def make(migrated: bool = True) -> str:
        name = f"t_{uuid.uuid4().hex}"
        ensure_database(admin_dsn, name)
        created.append(name)
        dsn = dsn_for_database(admin_dsn, name)
        if migrated and apply_migrations(dsn) is None:
            pytest.fail("schemas.migrate is not importable; cannot migrate the test database")
        return dsn

    yield make
    for name in created:
        drop_database(admin_dsn, name)


@pytest.fixture
def fresh_database(database_factory: Callable[..., str]) -> str:
    """DSN of a new database with all migrations applied, dropped after the test."""
    return database_factory(migrated=True)


# ---- per test: Redis -----------------------------------------------------------------------


@pytest.fixture
def redis_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix (`test:<name>-<hex>:`) no other test uses; put it before every key."""
    return _unique("test", request) + ":"


@pytest.fixture
def redis_client(stack_endpoints: StackEndpoints, redis_prefix: str) -> Iterator[redis.Redis]:
    """A client on the session's Redis; keys under `redis_prefix` are deleted afterwards."""
    client = redis.Redis.from_url(stack_endpoints.redis_url)
    yield client
    keys = list(client.scan_iter(match=redis_prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


# ---- the model ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model when present; otherwise a tiny one trained for the session."""
    if (DEFAULT_BUNDLE_PATH / "manifest.json").exists():
        return DEFAULT_BUNDLE_PATH
    from training.tiny import make_tiny_bundle

    return make_tiny_bundle(tmp_path_factory.mktemp("bundle"))
