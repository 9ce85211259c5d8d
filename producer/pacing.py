"""When to send each post: a fixed rate, as fast as possible, or the data's own pace sped up."""

from __future__ import annotations

import time
from datetime import datetime


class Pacer:
    """Call `wait()` before each send; it sleeps just enough to hold the target pace.

    With `rate` (posts/s) the schedule is fixed, so a slow moment is caught up afterwards
    rather than lowering the average. With `speedup` and timestamps, the gaps between
    posts are the original gaps divided by `speedup`.
    """

    def __init__(self, rate: float | None = None, speedup: float | None = None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._speedup = speedup
        self._start = time.monotonic()
        self._sent = 0
        self._first_timestamp: datetime | None = None

    def wait(self, timestamp: datetime | None = None) -> None:
        due = self.due_at(timestamp)
        self._sent += 1
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def due_at(self, timestamp: datetime | None) -> float:
        if self._speedup and timestamp is not None:
            if self._first_timestamp is None:
                self._first_timestamp = timestamp
            offset = (timestamp - self._first_timestamp).total_seconds() / self._speedup
            return self._start + max(0.0, offset)
        return self._start + self._sent * self._interval
