"""Detached server processes: spawn into their own session, find again by pid, stop cleanly."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

_POLL_S = 0.05


@dataclass(frozen=True)
class RunAs:
    """An unprivileged account to run a server as (PostgreSQL refuses to run as root)."""

    uid: int
    gid: int


@dataclass
class ServerProcess:
    name: str
    pid: int
    port: int
    # The kernel's start time, so a recycled pid is never mistaken for our server.
    started_at: float
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def is_running(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            process = psutil.Process(self.pid)
            same = abs(process.create_time() - self.started_at) < 0.5
            return same and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def wait(self, timeout_s: float) -> bool:
        """True when the process is gone within the timeout."""
        deadline = time.monotonic() + timeout_s
        while self.is_running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)
        return True

    def send(self, sig: signal.Signals) -> None:
        if self.is_running():
            os.kill(self.pid, sig)

    def kill_group(self) -> None:
        """SIGKILL the server and every child it forked (its session is its process group)."""
        if not self.is_running():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)


def spawn(
    name: str,
    argv: list[str],
    log_path: Path,
    *,
    port: int,
    cwd: Path,
    run_as: RunAs | None = None,
) -> ServerProcess:
    """Start a server detached from our session, so it outlives the command that started it."""
    logger.info("starting %s: %s (log %s)", name, " ".join(argv), log_path)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            **_identity(run_as),
        )
    started_at = psutil.Process(popen.pid).create_time()
    return ServerProcess(name, popen.pid, port, started_at, popen=popen)


def run_once(argv: list[str], log_path: Path, *, cwd: Path, run_as: RunAs | None = None) -> None:
    """Run a set-up command to completion, its output appended to the log."""
    logger.info("running %s", " ".join(argv))
    with open(log_path, "ab") as log:
        subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            check=True,
            **_identity(run_as),
        )


def _identity(run_as: RunAs | None) -> dict[str, object]:
    if run_as is None:
        return {}
    return {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}


def terminate(process: ServerProcess, sig: signal.Signals, timeout_s: float) -> None:
    """Ask politely with `sig`, then SIGKILL the whole group after the timeout."""
    if not process.is_running():
        return
    logger.info("stopping %s (pid %d) with %s", process.name, process.pid, sig.name)
    process.send(sig)
    if process.wait(timeout_s):
        return
    logger.warning("%s did not stop within %.0f s; killing it", process.name, timeout_s)
    process.kill_group()
    process.wait(5.0)
