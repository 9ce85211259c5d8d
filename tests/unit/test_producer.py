"""The producer's pure parts: reading data sets, building posts, pacing."""

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from producer.pacing import Pacer
from producer.publisher import encode, message_key
from producer.sources import read_rows, to_post
from schemas.decode import decode_post


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
    posts = [to_post(row, "test") for row in read_rows(path)]
    assert [p.text if p else None for p in posts] == ["fine", None, None]


def test_loop_rounds_get_new_ids_and_encoding_round_trips(tmp_path: Path) -> None:
    (row,) = read_rows(write(tmp_path / "t.csv", b"label,text\n1,fine\n"))
    first, second = to_post(row, "test", 0), to_post(row, "test", 1)
    assert first and second and first.post_id != second.post_id
    assert decode_post(encode(second)) == second
    assert message_key(first, "post_id") == first.post_id.encode()
    assert message_key(first, "author") is None


def test_pacer_holds_a_fixed_schedule() -> None:
    pacer = Pacer(rate=100)
    start = pacer.due_at(None)
    pacer._sent = 50
    assert pacer.due_at(None) == pytest.approx(start + 0.5)


def test_pacer_speedup_follows_the_data_timestamps() -> None:
    pacer = Pacer(speedup=60)
    t0 = datetime(2009, 4, 6, 22, 0, tzinfo=UTC)
    start = pacer.due_at(t0)
    assert pacer.due_at(t0.replace(minute=1)) == pytest.approx(start + 1.0)
