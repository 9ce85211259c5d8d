"""Rows in PostgreSQL's binary COPY format, built a column at a time.

In COPY's text format the writer turned every number and timestamp into text in Python (str()
of a float took 1.2 µs) for PostgreSQL to parse back. In the binary format, numbers and
timestamps go from numpy arrays into one block of fixed-size fields per row, with no Python
call per value; texts are encoded once and framed by lengths that numpy writes. pgcopy, the
library for binary COPY with psycopg2, packs each row with a Python call per value.

Format (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format"): a signature,
then per row a 16-bit field count and, per field, a 32-bit length (-1 for NULL) and the value
in the type's send format, all big-endian; a count of -1 ends the data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import NamedTuple

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # no flags, no extension
TRAILER = struct.pack(">h", -1)
NULL = struct.pack(">i", -1)

_POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_JSONB_VERSION = b"\x01"


def _microseconds(value: datetime) -> int:
    """timestamptz's binary value: microseconds since 2000-01-01 UTC."""
    return (value - _POSTGRES_EPOCH) // _MICROSECOND


# The types of a fixed size: numpy's big-endian dtype of the value, and how a value becomes a
# number numpy takes.
_FIXED_TYPES: dict[str, tuple[str, Callable[[object], object] | None]] = {
    "boolean": ("?", None),
    "smallint": (">i2", None),
    "integer": (">i4", None),
    "bigint": (">i8", None),
    "real": (">f4", None),
    "double precision": (">f8", None),
    "timestamptz": (">i8", _microseconds),  # type: ignore[dict-item]
}
_TEXT_TYPES = {"text": b"", "jsonb": _JSONB_VERSION}  # type -> what precedes the UTF-8
TYPES = frozenset(_FIXED_TYPES) | frozenset(_TEXT_TYPES)


def field(value: object, pg_type: str) -> bytes:
    """One value, length first, as its own piece (for constants and columns with NULLs)."""
    if value is None:
        return NULL
    if pg_type in _TEXT_TYPES:
        data = _TEXT_TYPES[pg_type] + str(value).encode()
    else:
        dtype, convert = _FIXED_TYPES[pg_type]
        data = np.asarray(convert(value) if convert else value, dtype).tobytes()
    return struct.pack(">i", len(data)) + data


class EncodedRows(NamedTuple):
    """The rows as COPY data, the columns in the order `columns` (not the order given)."""

    columns: list[str]
    data: bytes


def encode_columns(
    names: Sequence[str], types: Sequence[str], columns: Sequence[Sequence[object]]
) -> EncodedRows:
    """Rows given column by column (every column of one length) as binary COPY data.

    Every row starts with one block of its fixed-size fields, then the others follow (texts,
    columns of a few values, and columns holding both NULLs and values). A column holding one
    value in every row is encoded once and copied into every row's block.
    """
    rows = len(columns[0]) if columns else 0
    fixed: list[tuple[int, np.ndarray]] = []  # column index, (rows, size) bytes
    varying: list[tuple[int, list[list[bytes]]]] = []  # column index, its pieces per row
    for index, (pg_type, values) in enumerate(zip(types, columns, strict=True)):
        if len(values) != rows:
            raise ValueError(f"column {names[index]} has {len(values)} values, not {rows}")
        if rows and values.count(values[0]) == rows:
            constant = np.frombuffer(field(values[0], pg_type), np.uint8)
            fixed.append((index, np.broadcast_to(constant, (rows, len(constant)))))
        elif _few_distinct(values):
            encoded = {value: field(value, pg_type) for value in set(values)}
            varying.append((index, [list(map(encoded.__getitem__, values))]))
        elif pg_type in _FIXED_TYPES and None not in values:
            fixed.append((index, _fixed_fields(values, pg_type)))
        elif pg_type in _TEXT_TYPES and None not in values:
            varying.append((index, _text_fields(values, _TEXT_TYPES[pg_type])))
        else:
            varying.append((index, [[field(value, pg_type) for value in values]]))
    order = [index for index, _ in fixed] + [index for index, _ in varying]
    heads = _row_heads(len(names), [block for _, block in fixed], rows)
    pieces = [heads, *chain.from_iterable(lists for _, lists in varying)]
    interleaved: list[bytes] = [b""] * (rows * len(pieces))
    for position, per_row in enumerate(pieces):
        interleaved[position :: len(pieces)] = per_row
    data = b"".join(chain((SIGNATURE,), interleaved, (TRAILER,)))
    return EncodedRows([names[index] for index in order], data)


# How many of a column's first values tell whether it repeats a few values.
_SAMPLE = 32


def _few_distinct(values: Sequence[object]) -> bool:
    """Whether the column seems to repeat a few values (labels, a batch's timestamps), which
    are then encoded once each. Judged from its first values, so that a column of distinct
    texts is not hashed whole."""
    sample = values[:_SAMPLE]
    return len(set(sample)) * 4 <= len(sample)


def _fixed_fields(values: Sequence[object], pg_type: str) -> np.ndarray:
    dtype, convert = _FIXED_TYPES[pg_type]
    numbers = np.asarray(list(map(convert, values)) if convert else values, dtype)
    size = numbers.itemsize
    block = np.empty((len(values), 4 + size), np.uint8)
    block[:, :4] = np.frombuffer(struct.pack(">i", size), np.uint8)
    block[:, 4:] = numbers.view(np.uint8).reshape(len(values), size)
    return block


def _text_fields(values: Sequence[object], prefix: bytes) -> list[list[bytes]]:
    """Two pieces per row: the length, and the UTF-8 (after `prefix`)."""
    if prefix:
        encoded = [prefix + value.encode() for value in values]  # type: ignore[attr-defined]
    else:
        encoded = [value.encode() for value in values]  # type: ignore[attr-defined]
    lengths = np.fromiter(map(len, encoded), np.int64, len(encoded)).astype(">i4")
    return [lengths.view("V4").tolist(), encoded]


def _row_heads(field_count: int, blocks: list[np.ndarray], rows: int) -> list[bytes]:
    """Per row: the field count, then the fixed-size fields, as one piece."""
    count = np.broadcast_to(np.frombuffer(struct.pack(">h", field_count), np.uint8), (rows, 2))
    # C order for the view below: with no block, concatenate may return the count column-major.
    heads = np.ascontiguousarray(np.concatenate([count, *blocks], axis=1))
    return heads.view(f"V{heads.shape[1]}").ravel().tolist()
