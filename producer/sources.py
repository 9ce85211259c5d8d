"""Read posts from data sets: pure parsing, no Kafka.

Formats: the project's `label,text` CSV, the original Sentiment140 CSV (six columns, no
header, latin-1, polarity 0/4) and JSON lines. Gzip is detected from the file's first bytes.
Post ids are stable: the same file yields the same ids on every run.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Literal

from pydantic import ValidationError

from schemas.messages import IncomingPost

Format = Literal["auto", "labelled-csv", "sentiment140", "jsonl"]
_S140_DATE = "%a %b %d %H:%M:%S %Z %Y"


@dataclass(frozen=True, slots=True)
class SourceRow:
    post_id: str
    text: str
    author: str | None = None
    created_at: datetime | None = None
    label: int | None = None


def open_text(path: Path, encoding: str = "utf-8") -> IO[str]:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    raw = gzip.open(path, "rb") if gzipped else path.open("rb")  # noqa: SIM115 - caller closes
    return io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")


def detect_format(first_line: str) -> Format:
    stripped = first_line.lstrip()
    if stripped.startswith("{"):
        return "jsonl"
    if stripped.lower().startswith("label,text") or stripped.lower().startswith('"label","text"'):
        return "labelled-csv"
    return "sentiment140"


def read_rows(path: Path, fmt: Format = "auto") -> Iterator[SourceRow]:
    if fmt == "auto":
        with open_text(path, "latin-1") as handle:
            fmt = detect_format(handle.readline())
    prefix = dataset_prefix(path)
    if fmt == "sentiment140":
        with open_text(path, "latin-1") as handle:
            yield from _sentiment140_rows(handle)
    elif fmt == "labelled-csv":
        with open_text(path) as handle:
            yield from _labelled_rows(handle, prefix)
    else:
        with open_text(path) as handle:
            yield from _jsonl_rows(handle, prefix)


def dataset_prefix(path: Path) -> str:
    name = path.name.split(".")[0]
    parent = path.parent.name
    stem = f"{parent}-{name}" if parent else name
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in stem).strip("-") or "post"


def _labelled_rows(handle: IO[str], prefix: str) -> Iterator[SourceRow]:
    for number, record in enumerate(csv.DictReader(handle), start=1):
        label = record.get("label")
        yield SourceRow(
            post_id=f"{prefix}-{number}",
            text=record.get("text") or "",
            label=int(label) if label and label.isdigit() else None,
        )


def _sentiment140_rows(handle: IO[str]) -> Iterator[SourceRow]:
    for record in csv.reader(handle):
        if len(record) != 6:
            continue
        polarity, tweet_id, date, _query, user, text = record
        yield SourceRow(
            post_id=f"s140-{tweet_id}",
            text=text,
            author=user or None,
            created_at=_parse_s140_date(date),
            label={"0": 0, "4": 1, "2": 2}.get(polarity),
        )


def _parse_s140_date(text: str) -> datetime | None:
    try:  # "Mon Apr 06 22:19:45 PDT 2009": the zone name is not portable, use UTC-7
        parsed = datetime.strptime(text.replace("PDT", "-0700"), "%a %b %d %H:%M:%S %z %Y")
    except ValueError:
        return None
    return parsed


def _jsonl_rows(handle: IO[str], prefix: str) -> Iterator[SourceRow]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        created = record.get("created_at")
        yield SourceRow(
            post_id=str(record.get("post_id") or record.get("id") or f"{prefix}-{number}"),
            text=str(record.get("text") or ""),
            author=record.get("author") or record.get("user"),
            created_at=datetime.fromisoformat(created) if isinstance(created, str) else None,
            label=record.get("label") if isinstance(record.get("label"), int) else None,
        )


def to_post(row: SourceRow, source: str, loop: int = 0) -> IncomingPost | None:
    """The post to publish, or None when the row cannot satisfy the schema."""
    post_id = row.post_id if loop == 0 else f"{row.post_id}:{loop}"
    try:
        return IncomingPost(
            post_id=post_id,
            text=row.text,
            author=row.author[:256] if row.author else None,
            source=source,
            created_at=row.created_at,
        )
    except ValidationError:
        return None
