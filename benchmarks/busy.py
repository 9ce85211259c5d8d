"""Throughput while every consumer is busy, from the batches each one stored.

A saturation run drains a topic filled beforehand, and its edges are not the steady state the
targets are about: a consumer that joins the group first owns every partition until the others
join, a second or more on this broker, and works alone meanwhile; at the end, the consumer
that started first runs out of posts first and the others finish alone. The middle 80 % of
rows (the benchmark's "sustained" rate) still held up to a second of one consumer working alone
out of three. So each consumer's rate is taken between its own batch commits inside the window
in which all of them had posts left, from the moment every consumer owned partitions to the
moment the first one stored its last post, and the rates are added up.
"""

from __future__ import annotations

from collections.abc import Sequence

Batch = tuple[float, int]  # (stored_at of its transaction, in epoch seconds; rows)
# A rate between fewer batch commits than this is mostly the edges' rounding.
MIN_BATCHES = 3


def consumer_rate(batches: Sequence[Batch], since: float, until: float) -> float | None:
    """Rows per second between the first and last of a consumer's batches in [since, until].

    A batch's rows were classified before its commit, so the first batch in the window only
    marks where the window starts: its rows are not counted.
    """
    inside = sorted(batch for batch in batches if since <= batch[0] <= until)
    if len(inside) < MIN_BATCHES:
        return None
    (first, _), (last, _) = inside[0], inside[-1]
    return sum(rows for _, rows in inside[1:]) / (last - first)


def busy_rate(batches_by_consumer: Sequence[Sequence[Batch]], since: float) -> float | None:
    """The consumers' summed rates while all of them had posts left (None if too short)."""
    if not batches_by_consumer or not all(batches_by_consumer):
        return None
    until = min(max(time for time, _ in batches) for batches in batches_by_consumer)
    rates = [consumer_rate(batches, since, until) for batches in batches_by_consumer]
    if any(rate is None for rate in rates):
        return None
    return sum(rates)  # type: ignore[arg-type]
