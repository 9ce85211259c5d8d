"""When the writer threads may run their Python: while the loop does not run its own.

Without the inference thread, the loop runs its Python (decode, clean, result columns) and
then the model, which lets the GIL go. The writer threads' Python (a batch's COPY text, its
cache entries) used to start whenever their turn came, mostly while the loop ran its Python:
the two took turns on the GIL, the loop's work took longer, and during the model the other
core had nothing of this process to run (docs/performance.md, Where the time goes). The loop
closes the gate while it runs its Python and opens it for the model; a writer waits at the
gate before its Python, for at most `max_wait_s`, so that no writer waits on a loop that does
not come back to it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class PythonGate:
    def __init__(self, max_wait_s: float = 0.25) -> None:
        self._open = threading.Event()
        self._open.set()
        self._max_wait_s = max_wait_s

    @contextmanager
    def closed(self) -> Iterator[None]:
        """The loop's Python runs: writers wait (the loop's thread only)."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    @contextmanager
    def opened(self) -> Iterator[None]:
        """The loop lets the GIL go (the model): writers may run, inside `closed` too."""
        was_open = self._open.is_set()
        self._open.set()
        try:
            yield
        finally:
            if not was_open:
                self._open.clear()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def wait(self) -> bool:
        """Before a writer's Python: True when the gate opened, False after `max_wait_s`."""
        return self._open.wait(self._max_wait_s)
