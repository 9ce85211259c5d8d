"""The replay loop and the CLI's exit codes, against a fake producer (no Kafka)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import producer.__main__ as cli
from producer.pacing import Pacer
from producer.publisher import looped, replay


class FakeFuture:
    def add_callback(self, callback: Callable[[object], None]) -> FakeFuture:
        callback(None)
        return self

    def add_errback(self, _errback: Callable[[Exception], None]) -> FakeFuture:
        return self


class FakeProducer:
    """Acknowledges every post at once; `interrupt_after` raises Ctrl-C on a later send."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.sent: list[bytes] = []
        self.flush_timeouts: list[float | None] = []
        self.interrupt_after = interrupt_after

    def send(self, _topic: str, value: bytes, key: bytes | None) -> FakeFuture:
        if self.interrupt_after is not None and len(self.sent) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.sent.append(value)
        return FakeFuture()

    def flush(self, timeout: float | None = None) -> None:
        self.flush_timeouts.append(timeout)

    def close(self, timeout: float | None = None) -> None:
        pass


def run_cli(monkeypatch: pytest.MonkeyPatch, fake: FakeProducer, *args: str) -> int:
    monkeypatch.setattr(cli, "make_producer", lambda _settings: fake)
    try:
        return cli.main(["replay", "--no-progress", *args])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the CLI")


@pytest.mark.timeout(5)
@pytest.mark.parametrize("content", [b"", b"label,text\n", b"label,text\n1,   \n0,\n"])
def test_loop_ends_when_a_pass_publishes_nothing(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    report = replay(
        FakeProducer(),
        "posts",
        looped(path, "auto", loop=True),
        source="test",
        limit=5,
        pacer=Pacer(),
        progress=False,
    )
    assert report.sent == 0


def test_loop_rounds_publish_again_under_new_ids(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"label,text\n1,good\n0,\n")
    fake = FakeProducer()
    report = replay(
        fake,
        "posts",
        looped(path, "auto", True),
        source="t",
        limit=3,
        pacer=Pacer(),
        progress=False,
    )
    assert (report.sent, report.skipped, report.skip_reasons["invalid text"]) == (3, 2, 2)
    assert len(set(fake.sent)) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file has no rows"),
        (b"label,text\n1,  \n", "all 1 rows were skipped"),
        (b"just words\n", "cannot tell the format"),
        (b"\xef\xbb\xbf\n", "the file has no rows"),
    ],
)
def test_a_replay_that_publishes_nothing_exits_non_zero(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    message: str,
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    assert run_cli(monkeypatch, FakeProducer(), str(path)) == 1
    out, err = capsys.readouterr()
    assert "sent 0" in out
    assert message in err


def test_a_broken_csv_exits_non_zero_with_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b'label,text\n1,ok\n1,"oops\n' + b"0,more\n" * 200_000)
    assert run_cli(monkeypatch, FakeProducer(), str(path)) == 1
    out, err = capsys.readouterr()
    assert "sent 1, delivered 1" in out
    assert "unclosed quote" in err


def test_a_full_replay_exits_zero_and_names_skip_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"label,text\n1,fine\n0,\n")
    assert run_cli(monkeypatch, FakeProducer(), str(path)) == 0
    assert "skipped 1 (invalid text 1)" in capsys.readouterr().out


def test_ctrl_c_prints_the_report_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"label,text\n1,good\n")
    fake = FakeProducer(interrupt_after=2)
    assert run_cli(monkeypatch, fake, str(path), "--loop") == 130
    assert "sent 2, delivered 2" in capsys.readouterr().out
    assert fake.flush_timeouts and fake.flush_timeouts[-1] is not None  # waited, but briefly


def test_limit_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["replay", "x.csv", "--limit", "0"])
    assert "not a positive number" in capsys.readouterr().err
