"""Read posts from data sets: pure parsing, no Kafka.

Formats: a CSV with a header naming a `text` column (and optionally `label`, in any order and
case), the original Sentiment140 CSV (six columns, no header, latin-1, polarity 0/4) and JSON
lines. Gzip is detected from the file's first bytes, a UTF-8 byte-order mark is ignored.
Post ids are stable: the same file yields the same ids on every run, from any directory.
A row that cannot become a post is yielded as a `SkippedRow` saying why, never dropped silently.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import ValidationError

from schemas.messages import MAX_POST_BYTES, IncomingPost

DataFormat = Literal["labelled-csv", "sentiment140", "jsonl"]
Format = Literal["auto", "labelled-csv", "sentiment140", "jsonl"]

CSV_FIELD_LIMIT = 16 * MAX_POST_BYTES
"""Larger than any post the schema accepts (such rows are skipped as too long); a field larger
still is most likely an unclosed quote swallowing the rest of the file, and stops the replay."""

MAX_PREFIX_CHARS = 64
"""Leaves room within the 128-character post id for `-<row number>:<loop round>`."""

TOO_LARGE = "field over 64 KiB (an unclosed quote?)"
_DATA_SUFFIXES = {".csv", ".gz", ".jsonl", ".json"}
_UTF8_BOM = b"\xef\xbb\xbf"
_ZONE_OFFSETS = {"PDT": "-0700", "PST": "-0800", "UTC": "+0000", "GMT": "+0000"}
_TWITTER_DATE = "%a %b %d %H:%M:%S %z %Y"  # "Wed Oct 10 20:19:24 +0000 2018"


@dataclass(frozen=True, slots=True)
class SourceRow:
    post_id: str
    text: str
    author: str | None = None
    created_at: datetime | None = None
    label: int | None = None


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A row that was read but cannot be published, and why."""

    reason: str


class SourceError(Exception):
    """The data set cannot be read any further (unknown format, broken CSV)."""


def open_text(path: Path, encoding: str = "utf-8-sig") -> IO[str]:
    return io.TextIOWrapper(_open_bytes(path), encoding=encoding, errors="replace", newline="")


def _open_bytes(path: Path) -> IO[bytes]:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def detect_format(first_line: str) -> DataFormat | None:
    """The format of a file whose first non-blank line is `first_line`, or None if unknown."""
    line = first_line.strip().lstrip("\ufeff")
    if line.startswith(("{", "[")):
        return "jsonl"
    if "text" in _header_columns(line):
        return "labelled-csv"
    if _is_json(line):
        return "jsonl"
    if len(next(csv.reader([line]), [])) == 6:
        return "sentiment140"
    return None


def _header_columns(line: str) -> list[str]:
    return _column_names(next(csv.reader([line]), []))


def _column_names(header: list[str]) -> list[str]:
    return [column.strip().lower() for column in header]


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


def read_rows(path: Path, fmt: Format = "auto") -> Iterator[SourceRow]:
    """The rows that can become posts; see `read_records` for the skipped ones too."""
    for record in read_records(path, fmt):
        if isinstance(record, SourceRow):
            yield record


def read_records(path: Path, fmt: Format = "auto") -> Iterator[SourceRow | SkippedRow]:
    if fmt == "auto":
        fmt = _detect_file_format(path)
    prefix = dataset_prefix(path)
    if fmt == "sentiment140":
        with open_text(path, "utf-8-sig" if _starts_with_bom(path) else "latin-1") as handle:
            yield from _sentiment140_rows(handle, path)
    elif fmt == "labelled-csv":
        with open_text(path) as handle:
            yield from _labelled_rows(handle, prefix, path)
    else:
        with open_text(path) as handle:
            yield from _jsonl_rows(handle, prefix)


def _detect_file_format(path: Path) -> DataFormat:
    with open_text(path) as handle:
        first_line = next((line for line in handle if line.strip()), None)
    if first_line is None:
        return "labelled-csv"  # an empty file yields no rows, whatever its format
    detected = detect_format(first_line)
    if detected is None:
        raise SourceError(
            f"{path.name}: cannot tell the format from its first line {first_line.strip()[:80]!r}; "
            "expected a CSV header with a 'text' column, six Sentiment140 columns or JSON lines "
            "(or pass --format)"
        )
    return detected


def _starts_with_bom(path: Path) -> bool:
    with _open_bytes(path) as raw:
        return raw.read(len(_UTF8_BOM)) == _UTF8_BOM


def dataset_prefix(path: Path) -> str:
    """The post-id prefix for rows of `path`: its folder and file name (`imdb/train.csv.gz`
    and `sst2/train.csv` are different data sets), taken from the resolved path so that it is
    the same from any working directory; ASCII letters, digits and `._-`. When the name had to
    be changed (accents, spaces, length), a hash of it keeps two files from sharing ids."""
    resolved = path.resolve()
    name = _strip_data_suffixes(resolved.name)
    folder = resolved.parent.name
    stem = unicodedata.normalize("NFC", f"{folder}-{name}" if folder else name)
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", ascii_stem).lstrip("._-")
    if safe and safe == stem and len(safe) <= MAX_PREFIX_CHARS:
        return safe
    digest = hashlib.sha256(stem.encode()).hexdigest()[:8]
    return f"{(safe or 'post')[: MAX_PREFIX_CHARS - 9].rstrip('._-')}-{digest}"


def _strip_data_suffixes(name: str) -> str:
    while (suffix := Path(name).suffix).lower() in _DATA_SUFFIXES:
        name = name[: -len(suffix)]
    return name


def _csv_rows(handle: IO[str], path: Path) -> Iterator[list[str]]:
    """Non-blank CSV rows; a broken file (a field beyond `CSV_FIELD_LIMIT`) is a SourceError."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    reader = csv.reader(handle)
    try:
        yield from (row for row in reader if row)
    except csv.Error as error:
        raise SourceError(
            f"{path.name}, line {reader.line_num}: {error} (an unclosed quote?)"
        ) from None


def _oversized(record: list[str]) -> bool:
    return any(len(field) > MAX_POST_BYTES for field in record)


def _labelled_rows(handle: IO[str], prefix: str, path: Path) -> Iterator[SourceRow | SkippedRow]:
    rows = _csv_rows(handle, path)
    header = next(rows, None)
    if header is None:  # an empty file
        return
    columns = _column_names(header)
    if "text" not in columns:
        raise SourceError(f"{path.name}: the CSV header {columns[:10]} has no 'text' column")
    text_at = columns.index("text")
    label_at = columns.index("label") if "label" in columns else None
    for number, record in enumerate(rows, start=1):
        if _oversized(record):
            yield SkippedRow(TOO_LARGE)
            continue
        label = _column(record, label_at).strip()
        yield SourceRow(
            post_id=f"{prefix}-{number}",
            text=_column(record, text_at),
            label=int(label) if label.isdecimal() else None,
        )


def _column(record: list[str], index: int | None) -> str:
    """The field at `index`, or "" when the column is absent or the row too short."""
    return record[index] if index is not None and index < len(record) else ""


def _sentiment140_rows(handle: IO[str], path: Path) -> Iterator[SourceRow | SkippedRow]:
    for record in _csv_rows(handle, path):
        if _oversized(record):
            yield SkippedRow(TOO_LARGE)
        elif len(record) != 6:
            yield SkippedRow("not six Sentiment140 columns")
        else:
            yield _sentiment140_row(*record)


def _sentiment140_row(
    polarity: str, tweet_id: str, date: str, _query: str, user: str, text: str
) -> SourceRow:
    return SourceRow(
        post_id=f"s140-{tweet_id}",
        text=text,
        author=user or None,
        created_at=parse_timestamp(date),
        label={"0": 0, "4": 1, "2": 2}.get(polarity),
    )


def parse_timestamp(value: object) -> datetime | None:
    """An aware datetime from ISO 8601 (naive taken as UTC), Twitter's API format or
    Sentiment140's ("Mon Apr 06 22:19:45 PDT 2009"); None for anything else, never raises."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return _parse_twitter_date(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _parse_twitter_date(text: str) -> datetime | None:
    words = text.split()
    if len(words) == 6:  # zone names are not portable for strptime: use their offsets
        words[4] = _ZONE_OFFSETS.get(words[4], words[4])
    try:
        return datetime.strptime(" ".join(words), _TWITTER_DATE)
    except ValueError:
        return None


def _jsonl_rows(handle: IO[str], prefix: str) -> Iterator[SourceRow | SkippedRow]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # ValueError also covers integers of 4,300+ digits
            yield SkippedRow("malformed JSON")
            continue
        if not isinstance(record, dict):
            yield SkippedRow("JSON line is not an object")
            continue
        yield SourceRow(
            post_id=str(record.get("post_id") or record.get("id") or f"{prefix}-{number}"),
            text=_string(record.get("text")) or "",
            author=_author(record),
            created_at=parse_timestamp(record.get("created_at")),
            label=_label(record.get("label")),
        )


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _author(record: dict[str, Any]) -> str | None:
    """`author`, or `user` as a name or as a Twitter user object's `screen_name`."""
    user = record.get("user")
    if isinstance(user, dict):
        user = user.get("screen_name")
    return _string(record.get("author")) or _string(user)


def _label(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def build_post(row: SourceRow, source: str, loop: int = 0) -> IncomingPost | SkippedRow:
    """The post to publish, or why the row cannot satisfy the schema."""
    try:
        return IncomingPost(
            post_id=row.post_id if loop == 0 else f"{row.post_id}:{loop}",
            text=row.text,
            author=row.author[:256] if row.author else None,
            source=source,
            created_at=row.created_at,
        )
    except ValidationError as error:
        return SkippedRow(_schema_reason(error))


def _schema_reason(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(map(str, first["loc"])) or "post"
    return f"{field} too long" if first["type"] == "string_too_long" else f"invalid {field}"
