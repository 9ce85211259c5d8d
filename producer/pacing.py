"""When to send each post: a fixed rate, as fast as possible, or the data's own pace sped up."""

from __future__ import annotations

import logging
import time
from datetime import datetime

logger = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 10.0
"""Longest single wait with `speedup`: a day-long hole in the data should not stall a replay."""


class Pacer:
    """Call `wait()` before each send; it sleeps just enough to hold the target pace.

    Each post is due a gap after the previous one's due time, so a slow moment is caught up
    afterwards rather than lowering the average. With `rate` (posts/s) the gap is 1/rate.
    With `speedup`, the gap is the time between this post's timestamp and the previous
    timestamp, divided by `speedup` and capped at `max_wait`; a timestamp earlier than the
    previous one (an unsorted file, the next `--loop` round) means no wait, and pacing
    carries on from it. A post without a timestamp is sent at `rate` if one is given, at full
    speed otherwise; a warning says so once.
    """

    def __init__(
        self,
        rate: float | None = None,
        speedup: float | None = None,
        max_wait: float = MAX_WAIT_SECONDS,
    ) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._speedup = speedup
        self._max_wait = max_wait
        self._due: float | None = None
        self._previous_timestamp: datetime | None = None
        self._warned_no_timestamp = False

    def wait(self, timestamp: datetime | None = None) -> None:
        delay = self.due_at(timestamp) - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def due_at(self, timestamp: datetime | None) -> float:
        """When the next post (with this timestamp) is due; advances the schedule."""
        gap = self._gap(timestamp)
        self._due = time.monotonic() if self._due is None else self._due + gap
        return self._due

    def _gap(self, timestamp: datetime | None) -> float:
        if not self._speedup:
            return self._interval
        if timestamp is None:
            self._warn_no_timestamp()
            return self._interval
        previous, self._previous_timestamp = self._previous_timestamp, timestamp
        if previous is None:
            return 0.0
        gap = (timestamp - previous).total_seconds() / self._speedup
        return min(max(gap, 0.0), self._max_wait)

    def _warn_no_timestamp(self) -> None:
        if not self._warned_no_timestamp:
            self._warned_no_timestamp = True
            pace = f"at --rate {1 / self._interval:g}/s" if self._interval else "at full speed"
            logger.warning("--speedup: posts without a timestamp are sent %s", pace)
