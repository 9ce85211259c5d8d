"""The producer's pure parts: reading data sets, building posts, pacing."""

import gzip
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from producer.pacing import Pacer
from producer.publisher import encode, message_key
from producer.sources import (
    CSV_FIELD_LIMIT,
    TOO_LARGE,
    SkippedRow,
    SourceError,
    SourceRow,
    build_post,
    dataset_prefix,
    read_records,
    read_rows,
)
from schemas.decode import decode_post
from schemas.messages import POST_ID_PATTERN, IncomingPost


def write(path: Path, content: bytes) -> Path:
    if path.suffix == ".gz":
        content = gzip.compress(content)
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("name", ["tweets.csv", "tweets.csv.gz"])
def test_labelled_csv_gives_stable_ids(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, b'label,text\n1,"good, really"\n0,bad\n')
    rows = list(read_rows(path))
    assert [(r.label, r.text) for r in rows] == [(1, "good, really"), (0, "bad")]
    assert [r.post_id for r in rows] == [r.post_id for r in read_rows(path)]
    assert len({r.post_id for r in rows}) == 2


def test_original_sentiment140_csv_is_read_as_latin1(tmp_path: Path) -> None:
    line = '"4","1467810369","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","alice","caf\xe9 time"\n'
    path = write(tmp_path / "training.1600000.csv", line.encode("latin-1"))
    (row,) = read_rows(path)
    assert row.post_id == "s140-1467810369"
    assert row.text == "café time"
    assert row.label == 1
    assert row.author == "alice"
    assert row.created_at == datetime(2009, 4, 7, 5, 19, 45, tzinfo=UTC)


def test_json_lines_keep_their_ids(tmp_path: Path) -> None:
    lines = [{"post_id": "x-1", "text": "hi", "author": "bob"}, {"text": "no id"}]
    path = write(tmp_path / "posts.jsonl", "\n".join(map(json.dumps, lines)).encode())
    rows = list(read_rows(path))
    assert rows[0].post_id == "x-1"
    assert rows[0].author == "bob"
    assert rows[1].post_id.endswith("-2")


def test_posts_that_cannot_satisfy_the_schema_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", b"label,text\n1,fine\n0,\n1,   \n")
    posts = [build_post(row, "test") for row in read_rows(path)]
    assert [p.text if isinstance(p, IncomingPost) else None for p in posts] == ["fine", None, None]


def test_loop_rounds_get_new_ids_and_encoding_round_trips(tmp_path: Path) -> None:
    (row,) = read_rows(write(tmp_path / "t.csv", b"label,text\n1,fine\n"))
    first, second = build_post(row, "test", 0), build_post(row, "test", 1)
    assert isinstance(first, IncomingPost) and isinstance(second, IncomingPost)
    assert first.post_id != second.post_id
    assert decode_post(encode(second)) == second
    assert message_key(first, "post_id") == first.post_id.encode()
    assert message_key(first, "author") is None


def test_pacer_holds_a_fixed_schedule() -> None:
    pacer = Pacer(rate=100)
    start = pacer.due_at(None)
    dues = [pacer.due_at(None) for _ in range(50)]
    assert dues[-1] == pytest.approx(start + 0.5)


def test_pacer_speedup_follows_the_data_timestamps() -> None:
    pacer = Pacer(speedup=60)
    t0 = datetime(2009, 4, 6, 22, 0, tzinfo=UTC)
    start = pacer.due_at(t0)
    assert pacer.due_at(t0.replace(minute=1)) == pytest.approx(start + 1.0)


# Format detection: a header names its columns, a BOM or a blank first line changes nothing.


@pytest.mark.parametrize(
    "content",
    [
        "\ufefflabel,text\n1,good day\n0,bad day\n".encode(),  # Excel's "CSV UTF-8"
        b"text,label\ngood day,1\nbad day,0\n",
        b'"Id","Text","Label"\n7,good day,1\n8,bad day,0\n',
    ],
    ids=["bom", "text-first", "any-case-extra-columns"],
)
def test_csv_header_is_found_by_column_names(tmp_path: Path, content: bytes) -> None:
    rows = list(read_rows(write(tmp_path / "posts.csv", content)))
    assert [(r.text, r.label) for r in rows] == [("good day", 1), ("bad day", 0)]


def test_csv_header_without_label_column(tmp_path: Path) -> None:
    (row,) = read_rows(write(tmp_path / "posts.csv", b"author,text\nbob,hello\n"))
    assert (row.text, row.label) == ("hello", None)


def test_json_lines_after_a_blank_or_non_object_first_line(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.jsonl", b'\n[1, 2]\n{"text": "hi"}\nnot json\n')
    records = list(read_records(path))
    assert [r.text for r in records if isinstance(r, SourceRow)] == ["hi"]
    assert [r.reason for r in records if isinstance(r, SkippedRow)] == [
        "JSON line is not an object",
        "malformed JSON",
    ]


def test_sentiment140_rows_without_six_columns_are_counted(tmp_path: Path) -> None:
    good = '"0","1","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","bob","fine"\n'
    path = write(tmp_path / "s140.csv", (good + '"0","2","broken"\n').encode("latin-1"))
    records = list(read_records(path))
    assert isinstance(records[0], SourceRow)
    assert records[1] == SkippedRow("not six Sentiment140 columns")


def test_a_file_of_unknown_format_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot tell the format"):
        list(read_rows(write(tmp_path / "notes.txt", b"just some words\nmore words\n")))


# JSON fields of the wrong type never raise.


def test_twitter_api_json_lines(tmp_path: Path) -> None:
    tweet = {
        "id": 1050118621198921728,
        "text": "hello",
        "user": {"screen_name": "bob"},
        "created_at": "Wed Oct 10 20:19:24 +0000 2018",
    }
    (row,) = read_rows(write(tmp_path / "tweets.jsonl", json.dumps(tweet).encode()))
    assert (row.post_id, row.author) == ("1050118621198921728", "bob")
    assert row.created_at == datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "author", "created_at"),
    [
        ({"author": 12345}, None, None),
        ({"user": {"id": 1}}, None, None),
        ({"created_at": "yesterday"}, None, None),
        ({"created_at": 1700000000}, None, None),
        ({"created_at": "2024-01-01T10:00:00"}, None, datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ({"created_at": "2024-01-01T10:00:00Z"}, None, datetime(2024, 1, 1, 10, tzinfo=UTC)),
    ],
)
def test_json_fields_of_the_wrong_type_are_ignored(
    tmp_path: Path, fields: dict[str, object], author: str | None, created_at: datetime | None
) -> None:
    path = write(tmp_path / "posts.jsonl", json.dumps({"text": "hi", **fields}).encode())
    (row,) = read_rows(path)
    assert (row.author, row.created_at) == (author, created_at)
    assert isinstance(build_post(row, "test"), IncomingPost)


# Post ids: from the file's folder and name, the same from any working directory, valid,
# distinct for distinct files.


def test_dataset_prefix_is_the_same_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "imdb").mkdir()
    monkeypatch.chdir(tmp_path)
    from_above = dataset_prefix(Path("imdb/train.csv.gz"))
    monkeypatch.chdir(tmp_path / "imdb")
    assert dataset_prefix(Path("train.csv.gz")) == from_above == "imdb-train"
    assert dataset_prefix(tmp_path / "imdb" / "train.csv.gz") == from_above


def test_same_file_names_in_different_folders_give_different_prefixes() -> None:
    assert dataset_prefix(Path("/d/imdb/train.csv.gz")) != dataset_prefix(Path("/d/sst2/train.csv"))


@pytest.mark.parametrize(
    "names",
    [
        ("train.2023.csv", "train.2024.csv"),
        ("my data.csv", "my-data.csv"),
        ("données.csv", "donnees.csv"),
        ("a" * 200 + "1.csv", "a" * 200 + "2.csv"),
    ],
)
def test_distinct_file_names_give_distinct_prefixes(names: tuple[str, str]) -> None:
    first, second = (dataset_prefix(Path("/data") / name) for name in names)
    assert first != second


@pytest.mark.parametrize(
    "name", ["données.csv", "_x.jsonl", "日本語.csv", "a" * 300 + ".csv", "..csv", "x y!.json"]
)
def test_post_ids_from_any_name_fit_the_schema(name: str) -> None:
    post_id = f"{dataset_prefix(Path('/Téléchargements') / name)}-{10**12}:{10**6}"
    assert re.fullmatch(POST_ID_PATTERN, post_id), post_id


# Oversized CSV fields.


def test_a_csv_field_over_128_kib_is_skipped_as_too_large(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", b"label,text\n1," + b"a" * 200_000 + b"\n0,ok\n")
    records = list(read_records(path))
    assert records[0] == SkippedRow(TOO_LARGE)
    assert isinstance(records[1], SourceRow) and records[1].text == "ok"


def test_an_unclosed_quote_is_a_source_error(tmp_path: Path) -> None:
    rest = b"0,more\n" * (CSV_FIELD_LIMIT // 7 + 1)
    path = write(tmp_path / "t.csv", b'label,text\n1,ok\n1,"oops\n' + rest)
    with pytest.raises(SourceError, match="line"):
        list(read_records(path))


# Pacing by the gaps between timestamps.


def test_pacer_speedup_keeps_pacing_after_timestamps_go_backwards() -> None:
    pacer = Pacer(speedup=60)
    t0 = datetime(2009, 4, 6, 22, 0, tzinfo=UTC)
    minute = timedelta(minutes=1)
    dues = [pacer.due_at(t) for t in (t0, t0 + minute, t0, t0 + minute)]
    assert [due - dues[0] for due in dues] == pytest.approx([0.0, 1.0, 1.0, 2.0])


def test_pacer_speedup_caps_a_single_wait() -> None:
    pacer = Pacer(speedup=60, max_wait=10)
    t0 = datetime(2009, 4, 6, 22, 0, tzinfo=UTC)
    start = pacer.due_at(t0)
    assert pacer.due_at(t0 + timedelta(days=30)) == pytest.approx(start + 10)


def test_pacer_speedup_without_timestamps_warns_once_and_falls_back_to_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pacer = Pacer(rate=10, speedup=60)
    with caplog.at_level(logging.WARNING, logger="producer.pacing"):
        dues = [pacer.due_at(None) for _ in range(3)]
    assert dues[2] - dues[0] == pytest.approx(0.2)
    assert [r.getMessage() for r in caplog.records] == [
        "--speedup: posts without a timestamp are sent at --rate 10/s"
    ]
