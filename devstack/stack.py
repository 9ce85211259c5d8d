"""EmbeddedStack: start, stop and break the three servers; the only class that holds processes."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Mapping
from types import TracebackType

import redis

from devstack import kafka, postgres
from devstack.commands import (
    Binaries,
    broker_command,
    find_binaries,
    postgres_command,
    redis_command,
)
from devstack.config import SERVICES, ServiceName, StackConfig, StackEndpoints, dsn_for_database
from devstack.errors import StackError
from devstack.probes import ensure_port_free, port_open, wait_until
from devstack.process import ServerProcess, spawn, terminate
from devstack.state import ProcessRecord, StackPaths, StackState, read_state, write_state

logger = logging.getLogger(__name__)

# PostgreSQL's SIGTERM ("smart") waits for every client to disconnect; SIGINT ("fast")
# rolls them back and stops at once, which is what a clean `down` wants.
STOP_SIGNALS: dict[str, signal.Signals] = {
    "kafka": signal.SIGTERM,
    "redis": signal.SIGTERM,
    "postgres": signal.SIGINT,
}


class EmbeddedStack:
    """The broker, Redis and PostgreSQL of one state folder.

    Servers that an earlier `up` left running (recorded in stack.json) are adopted, so
    any process can report on or stop them.
    """

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.paths = StackPaths(self.config.state_dir)
        self.topics: dict[str, int] = dict(self.config.topics)
        self.migrations: list[str] | None = None
        self._processes: dict[str, ServerProcess] = {}
        self._binaries: Binaries | None = None
        self._adopt_running()

    @property
    def endpoints(self) -> StackEndpoints:
        return self.config.endpoints()

    def __enter__(self) -> StackEndpoints:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- whole stack -------------------------------------------------------------------

    def start(self) -> StackEndpoints:
        """Start every server not already running; on failure stop those started here."""
        self._check_ports()
        missing = [name for name in SERVICES if not self.is_running(name)]
        for name in missing:  # all ports before any server, so a clash leaves nothing behind
            ensure_port_free(name, self.config.host, self.config.port_of(name))
        started_here: list[str] = []
        began = time.monotonic()
        try:
            for name in missing:
                self.start_service(name)
                started_here.append(name)
        except BaseException:
            for name in reversed(started_here):
                self.stop_service(name)
            raise
        if started_here:
            logger.info("stack up in %.1f s (%s)", time.monotonic() - began, self.paths.root)
        return self.endpoints

    def stop(self) -> None:
        for name in reversed(SERVICES):
            self.stop_service(name)
        self.paths.state_file.unlink(missing_ok=True)

    def is_running(self, name: ServiceName) -> bool:
        process = self._processes.get(name)
        return process is not None and process.is_running()

    def process(self, name: ServiceName) -> ServerProcess | None:
        return self._processes.get(name)

    # ---- one service -------------------------------------------------------------------

    def start_service(self, name: ServiceName) -> None:
        """Start one server on its configured port (no-op when running)."""
        if self.is_running(name):
            return
        self._check_name(name)
        self.paths.create()
        ensure_port_free(name, self.config.host, self.config.port_of(name))
        starters = {
            "kafka": self._start_kafka,
            "redis": self._start_redis,
            "postgres": self._start_postgres,
        }
        try:
            starters[name]()
        except BaseException:
            # The server may be up already (a migration or topic creation failed after it
            # started): stop it, or it would run on unrecorded, holding its port.
            if name in self._processes:
                self.stop_service(name)
            raise
        self._save_state()

    def stop_service(self, name: ServiceName) -> None:
        """Stop one server cleanly (SIGKILL after `stop_timeout_s`)."""
        self._check_name(name)
        process = self._processes.pop(name, None)
        if process is not None:
            terminate(process, STOP_SIGNALS[name], self.config.stop_timeout_s)
            self._save_state()

    def kill_service(self, name: ServiceName) -> None:
        """SIGKILL one server and its children, as a crash would."""
        self._check_name(name)
        process = self._processes.pop(name, None)
        if process is not None:
            logger.info("killing %s (pid %d)", name, process.pid)
            process.kill_group()
            if not process.wait(10.0):
                raise StackError(f"{name} (pid {process.pid}) survived SIGKILL")
            self._save_state()

    def create_topics(self, topics: Mapping[str, int]) -> list[str]:
        """Create topics and remember them, so a broker restart recreates them too."""
        self.topics.update(topics)
        return kafka.create_topics(self.endpoints.kafka_bootstrap, topics)

    # ---- starters ----------------------------------------------------------------------

    def _start_kafka(self) -> None:
        config = self.config
        argv = broker_command(self.binaries.tansu, config.host, config.kafka_port)
        process = self._spawn("kafka", argv)
        bootstrap = self.endpoints.kafka_bootstrap
        # The cheap port check first keeps kafka-python from logging refused connections.
        self._wait(
            process,
            lambda: port_open(config.host, config.kafka_port) and kafka.metadata_ready(bootstrap),
        )
        # Memory storage: a (re)started broker has no topics, so create them every time.
        kafka.create_topics(bootstrap, self.topics)

    def _start_redis(self) -> None:
        config = self.config
        argv = redis_command(
            self.binaries.redis_server, config.host, config.redis_port, self.paths.redis_data
        )
        process = self._spawn("redis", argv)
        client = redis.Redis.from_url(self.endpoints.redis_url, socket_timeout=1)
        try:
            self._wait(process, lambda: _redis_pings(client))
        finally:
            client.close()

    def _start_postgres(self) -> None:
        config, data_dir = self.config, self.paths.postgres_data
        run_as = postgres.run_as_for_postgres()
        if not postgres.is_initialised(data_dir):
            postgres.initialise(
                self.binaries.postgres_bin,
                data_dir,
                superuser=config.postgres_user,
                password=config.postgres_password.get_secret_value(),
                log_path=self.paths.log("postgres"),
                run_as=run_as,
            )
        argv = postgres_command(
            self.binaries.postgres_bin, data_dir, config.host, config.postgres_port
        )
        process = self._spawn("postgres", argv, run_as=run_as)
        admin_dsn = dsn_for_database(self.endpoints.postgres_dsn, "postgres")
        self._wait(process, lambda: postgres.accepts_connections(admin_dsn))
        postgres.ensure_database(admin_dsn, config.postgres_db)
        self.migrations = postgres.apply_migrations(self.endpoints.postgres_dsn)

    # ---- helpers -----------------------------------------------------------------------

    @property
    def binaries(self) -> Binaries:
        if self._binaries is None:
            self._binaries = find_binaries(self.config.redis_server)
        return self._binaries

    def _spawn(
        self, name: ServiceName, argv: list[str], run_as: postgres.RunAs | None = None
    ) -> ServerProcess:
        log, port = self.paths.log(name), self.config.port_of(name)
        process = spawn(name, argv, log, port=port, cwd=self.paths.root, run_as=run_as)
        self._processes[name] = process
        return process

    def _wait(self, process: ServerProcess, probe: Callable[[], bool]) -> None:
        try:
            wait_until(
                probe,
                process,
                timeout_s=self.config.startup_timeout_s,
                log_path=self.paths.log(process.name),
            )
        except StackError:
            self._processes.pop(process.name, None)
            terminate(process, signal.SIGKILL, 5.0)
            raise

    @staticmethod
    def _check_name(name: str) -> None:
        if name not in SERVICES:
            raise ValueError(f"unknown service {name!r}; expected one of {', '.join(SERVICES)}")

    def _adopt_running(self) -> None:
        state = read_state(self.paths.state_file)
        if state is None:
            return
        for name, record in state.processes.items():
            process = ServerProcess(name, record.pid, record.port, record.started_at)
            if process.is_running():
                self._processes[name] = process
        self.topics.update(state.topics)
        self.migrations = state.migrations

    def _check_ports(self) -> None:
        """Refuse to start a second copy of a server that runs on another port."""
        for name, process in self._processes.items():
            wanted = self.config.port_of(name)
            if process.port != wanted and process.is_running():
                raise StackError(
                    f"{name} of {self.paths.root} already runs on port {process.port}, "
                    f"not {wanted}; run `python -m devstack down` first"
                )

    def _save_state(self) -> None:
        records = {
            name: ProcessRecord(
                pid=process.pid,
                started_at=process.started_at,
                port=process.port,
                log=str(self.paths.log(name)),
            )
            for name, process in self._processes.items()
        }
        state = StackState(
            endpoints=self.endpoints,
            processes=records,
            topics=self.topics,
            migrations=self.migrations,
        )
        write_state(self.paths.state_file, state)

    def state(self) -> StackState | None:
        return read_state(self.paths.state_file)


def _redis_pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
