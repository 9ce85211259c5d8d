"""benchmarks.busy: the consumers' rate while all of them had posts left."""

from __future__ import annotations

import pytest

from benchmarks.busy import busy_rate, consumer_rate


def batches(
    start: float, count: int, every: float = 0.1, rows: int = 1000
) -> list[tuple[float, int]]:
    return [(start + i * every, rows) for i in range(count)]


def test_a_consumer_rate_leaves_out_the_first_batch_in_the_window() -> None:
    # 1,000 rows every 0.1 s: 10,000/s, whatever the window cuts off.
    assert consumer_rate(batches(0.0, 30), since=0.55, until=2.0) == pytest.approx(10_000)


def test_the_window_ends_when_the_first_consumer_runs_out() -> None:
    # The first consumer works alone for a second, then both; it finishes first, at 3.9 s.
    early = batches(0.0, 40)
    late = batches(1.0, 40, every=0.125)  # 8,000/s, alone after 3.9 s
    assert busy_rate([early, late], since=1.0) == pytest.approx(18_000)


def test_the_head_start_of_one_consumer_is_not_counted() -> None:
    # Before `since` (all consumers own partitions) the first one works alone at a faster rate.
    head = batches(0.0, 10, every=0.05)
    both = [*head, *batches(1.0, 20)]
    assert busy_rate([both, batches(1.0, 20)], since=1.0) == pytest.approx(20_000)


def test_too_short_a_window_gives_no_rate() -> None:
    assert busy_rate([batches(0.0, 30), batches(2.8, 3)], since=0.0) is None
    assert busy_rate([batches(0.0, 30), []], since=0.0) is None
