"""The table `up` and `status` print (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devstack.config import SERVICES, StackEndpoints


@dataclass(frozen=True)
class ServiceRow:
    service: str
    state: str  # "running", "stopped" or "not answering"
    pid: int | None
    endpoint: str
    log: str


def service_rows(
    endpoints: StackEndpoints,
    pids: dict[str, int],
    answering: dict[str, bool],
    logs_dir: Path,
) -> list[ServiceRow]:
    shown = endpoints.redacted()
    rows = []
    for name in SERVICES:
        pid = pids.get(name)
        state = "stopped" if pid is None else "running" if answering.get(name) else "not answering"
        rows.append(ServiceRow(name, state, pid, shown[name], str(logs_dir / f"{name}.log")))
    return rows


def format_table(rows: list[ServiceRow]) -> str:
    header = ("SERVICE", "STATE", "PID", "ENDPOINT", "LOG")
    cells = [header] + [
        (r.service, r.state, "-" if r.pid is None else str(r.pid), r.endpoint, r.log) for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def format_report(
    rows: list[ServiceRow],
    topics: dict[str, int],
    migrations: list[str] | None,
    state_file: Path,
) -> str:
    topic_text = ", ".join(f"{name} ({count} partitions)" for name, count in topics.items())
    if migrations is None:
        migration_text = "none recorded"
    else:
        migration_text = ", ".join(migrations) or "up to date"
    return "\n".join(
        [
            format_table(rows),
            "",
            f"topics:     {topic_text}",
            f"migrations: {migration_text}",
            f"state:      {state_file}",
        ]
    )
