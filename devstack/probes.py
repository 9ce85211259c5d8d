"""Readiness checks: wait until a freshly started server really answers."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

from devstack.errors import StackError
from devstack.process import ServerProcess

logger = logging.getLogger(__name__)


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def ensure_port_free(service: str, host: str, port: int) -> None:
    """Refuse to start when something already listens: probes would talk to that instead."""
    if port_open(host, port):
        raise StackError(
            f"{service}: {host}:{port} is already in use; pick another port "
            f"(SENTIMENT_STACK_{service.upper()}_PORT) or stop what runs there"
        )


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until(
    probe: Callable[[], bool],
    process: ServerProcess,
    *,
    timeout_s: float,
    log_path: Path,
    interval_s: float = 0.1,
) -> float:
    """Poll `probe` until true; fail early if the server exits. Returns the seconds waited."""
    started = time.monotonic()
    deadline = started + timeout_s
    while not probe():
        if not process.is_running():
            raise StackError(
                f"{process.name} exited during start-up; {log_path}:\n{log_tail(log_path)}"
            )
        if time.monotonic() >= deadline:
            raise StackError(
                f"{process.name} not ready after {timeout_s:.0f} s; {log_path}:\n"
                f"{log_tail(log_path)}"
            )
        time.sleep(interval_s)
    waited = time.monotonic() - started
    logger.info("%s ready after %.2f s", process.name, waited)
    return waited
