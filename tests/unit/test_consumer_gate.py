"""consumer.gate: writers wait while the loop runs its Python, never longer than the limit."""

from __future__ import annotations

import threading
import time

from consumer.gate import PythonGate


def test_an_open_gate_lets_a_writer_through_at_once() -> None:
    started = time.monotonic()
    assert PythonGate(max_wait_s=5).wait()
    assert time.monotonic() - started < 1


def test_a_closed_gate_holds_a_writer_until_the_loop_opens_it_for_the_model() -> None:
    gate = PythonGate(max_wait_s=5)
    passed = threading.Event()

    def writer() -> None:
        gate.wait()
        passed.set()

    with gate.closed():
        thread = threading.Thread(target=writer)
        thread.start()
        assert not passed.wait(0.2)  # the loop's Python runs: the writer waits
        with gate.opened():  # the model runs
            assert passed.wait(5)
        thread.join()
    assert gate.wait()  # open again after the loop's Python


def test_the_gate_closes_again_after_the_model_inside_the_loops_python() -> None:
    gate = PythonGate(max_wait_s=0.05)
    with gate.closed():
        with gate.opened():
            assert gate.wait()
        assert not gate.wait()  # back to the loop's Python: closed
    assert gate.wait()


def test_a_writer_never_waits_longer_than_the_limit() -> None:
    gate = PythonGate(max_wait_s=0.1)
    with gate.closed():
        started = time.monotonic()
        assert not gate.wait()
        assert 0.09 < time.monotonic() - started < 2


def test_opening_an_open_gate_leaves_it_open() -> None:
    gate = PythonGate(max_wait_s=0.05)
    with gate.opened():
        assert gate.wait()
    assert gate.wait()
