"""`stack.json`: what runs where, so `status` and `down` find servers that `up` left running."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from devstack.config import StackEndpoints

STATE_FILE = "stack.json"


class ProcessRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    pid: int
    started_at: float
    port: int
    log: str


class StackState(BaseModel):
    model_config = ConfigDict(frozen=True)

    endpoints: StackEndpoints
    processes: dict[str, ProcessRecord]
    topics: dict[str, int]
    migrations: list[str] | None = None


class StackPaths:
    """The layout of the state folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.logs = self.root / "logs"
        self.state_file = self.root / STATE_FILE
        self.redis_data = self.root / "redis"
        self.postgres_data = self.root / "postgres"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def create(self) -> None:
        for folder in (self.root, self.logs, self.redis_data):
            folder.mkdir(parents=True, exist_ok=True)


def read_state(path: Path) -> StackState | None:
    try:
        return StackState.model_validate_json(path.read_text())
    except FileNotFoundError:
        return None


def write_state(path: Path, state: StackState) -> None:
    """Atomic write, owner-only: the endpoints carry the database password."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(state.model_dump(mode="json"), handle, indent=2)
    os.replace(tmp, path)
