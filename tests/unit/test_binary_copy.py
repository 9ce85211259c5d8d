"""The binary COPY encoder, read back by an independent reader of the documented format."""

import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest

from consumer.batch import RESULT_COLUMNS
from consumer.binary_copy import NULL, SIGNATURE, TRAILER, TYPES, encode_columns, field
from consumer.store import RESULT_COLUMN_TYPES

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def read_value(data: bytes, pg_type: str) -> object:
    """A value from its binary send format, struct by struct."""
    if pg_type == "text":
        return data.decode()
    if pg_type == "jsonb":
        assert data[:1] == b"\x01"  # jsonb's format version
        return data[1:].decode()
    if pg_type == "timestamptz":
        return EPOCH + timedelta(microseconds=struct.unpack(">q", data)[0])
    format_ = {"boolean": ">?", "integer": ">i", "bigint": ">q", "real": ">f"}[pg_type]
    return struct.unpack(format_, data)[0]


def read_rows(data: bytes, types: list[str]) -> list[tuple[object, ...]]:
    assert data.startswith(SIGNATURE) and data.endswith(TRAILER)
    position, rows = len(SIGNATURE), []
    while True:
        (count,) = struct.unpack_from(">h", data, position)
        position += 2
        if count == -1:
            assert position == len(data)
            return rows
        assert count == len(types)
        row = []
        for pg_type in types:
            (length,) = struct.unpack_from(">i", data, position)
            position += 4
            if length == -1:
                row.append(None)
                continue
            row.append(read_value(data[position : position + length], pg_type))
            position += length
        rows.append(tuple(row))


def decoded(names: list[str], types: list[str], columns: list[list[object]]) -> list[dict]:
    encoded = encode_columns(names, types, columns)
    assert sorted(encoded.columns) == sorted(names)
    type_of = dict(zip(names, types, strict=True))
    rows = read_rows(encoded.data, [type_of[name] for name in encoded.columns])
    return [dict(zip(encoded.columns, row, strict=True)) for row in rows]


WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
INDIA = timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("pg_type", "values"),
    [
        ("text", ["tab\there", "new\nline\\", "ümlaut 日本 \U0001f600", ""]),
        ("text", ["positive", "negative", "positive", "positive"]),  # few distinct values
        ("text", [None, "author", None, "x"]),
        ("jsonb", ['{"k": "v\\tw"}', "{}", '{"n": 1}', "{}"]),
        ("real", [0.5, 0.25, 1.0, 0.0]),
        ("integer", [0, 3, -1, 2**31 - 1]),
        ("integer", [None, 3, None, 4]),
        ("bigint", [2**40, 0, -5, 2**63 - 1]),
        ("boolean", [True, False, True, True]),
        ("timestamptz", [WHEN, WHEN.astimezone(INDIA), datetime(1, 1, 1, tzinfo=UTC), WHEN]),
        ("timestamptz", [None, WHEN, None, datetime(9999, 12, 31, tzinfo=UTC)]),
    ],
)
def test_each_type_reads_back_as_the_value_given(pg_type: str, values: list[object]) -> None:
    rows = decoded(["key", "value"], ["text", pg_type], [["a", "b", "c", "d"], values])
    assert [row["key"] for row in rows] == ["a", "b", "c", "d"]
    assert [row["value"] for row in rows] == values


def test_a_column_of_one_value_is_the_same_in_every_row() -> None:
    names = ["key", "version", "missing", "when", "flag", "score"]
    types = ["text", "text", "text", "timestamptz", "boolean", "real"]
    columns = [["a", "b", "c"], ["v1"] * 3, [None] * 3, [WHEN] * 3, [False] * 3, [0.5] * 3]
    for row in decoded(names, types, columns):
        assert {name: row[name] for name in names[1:]} == {
            "version": "v1", "missing": None, "when": WHEN, "flag": False, "score": 0.5,
        }  # fmt: skip


def test_one_row_and_no_rows() -> None:
    assert decoded(["key", "n"], ["text", "bigint"], [["only"], [7]]) == [{"key": "only", "n": 7}]
    assert encode_columns(["key"], ["text"], [[]]).data == SIGNATURE + TRAILER


def test_a_field_is_its_length_then_its_value() -> None:
    assert field(None, "text") == NULL
    assert field("ü", "text") == b"\x00\x00\x00\x02\xc3\xbc"
    assert field(7, "integer") == b"\x00\x00\x00\x04\x00\x00\x00\x07"
    assert field("{}", "jsonb") == b"\x00\x00\x00\x03\x01{}"


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="column n has 1 values, not 2"):
        encode_columns(["key", "n"], ["text", "integer"], [["a", "b"], [1]])


def test_every_result_column_has_a_type_the_encoder_knows() -> None:
    # tests/integration/test_store.py checks these types against the table itself.
    assert list(RESULT_COLUMN_TYPES) == list(RESULT_COLUMNS)
    assert set(RESULT_COLUMN_TYPES.values()) <= TYPES
