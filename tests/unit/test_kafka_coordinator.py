"""consumer.coordinator: a known coordinator is answered on the caller's thread."""

from __future__ import annotations

from kafka import KafkaConsumer

from consumer.coordinator import answer_known_coordinator_in_place


class FakeCoordinator:
    """The two methods the shortcut uses; `unknown` says what coordinator_unknown() answers."""

    def __init__(self, unknown: bool) -> None:
        self.unknown = unknown
        self.io_thread_calls: list[float | None] = []

    def coordinator_unknown(self) -> bool:
        return self.unknown

    def ensure_coordinator_ready(self, timeout_ms: float | None = None) -> bool:
        self.io_thread_calls.append(timeout_ms)
        return False  # as when the lookup times out


class FakeConsumer:
    def __init__(self, coordinator: object) -> None:
        self._coordinator = coordinator


def test_a_known_coordinator_needs_no_io_thread() -> None:
    coordinator = FakeCoordinator(unknown=False)
    assert answer_known_coordinator_in_place(FakeConsumer(coordinator))  # type: ignore[arg-type]
    assert coordinator.ensure_coordinator_ready(timeout_ms=500) is True
    assert coordinator.io_thread_calls == []


def test_an_unknown_coordinator_is_looked_up_as_before() -> None:
    coordinator = FakeCoordinator(unknown=True)
    assert answer_known_coordinator_in_place(FakeConsumer(coordinator))  # type: ignore[arg-type]
    assert coordinator.ensure_coordinator_ready(timeout_ms=500) is False
    assert coordinator.io_thread_calls == [500]


def test_a_consumer_without_that_step_is_left_alone() -> None:
    assert not answer_known_coordinator_in_place(FakeConsumer(object()))  # type: ignore[arg-type]


def test_kafka_pythons_consumer_has_the_step() -> None:
    consumer = KafkaConsumer(bootstrap_servers="127.0.0.1:1", api_version=(2, 5), group_id="g")
    try:
        assert answer_known_coordinator_in_place(consumer)
    finally:
        consumer.close()
