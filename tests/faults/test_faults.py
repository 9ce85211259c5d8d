"""Faults under a steady replay, checked against the ledger (see tests/faults/harness.py)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack import StackEndpoints
from tests.faults.conftest import long_mode
from tests.faults.harness import (
    PARTITIONS,
    Environment,
    Outcome,
    ProxiedBroker,
    Runner,
    Scenario,
    build_ledger,
    iter_scenarios,
    spread,
)
from tests.integration.conftest import Services


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scenario" in metafunc.fixturenames:
        scenarios = list(iter_scenarios(long_mode(metafunc.config)))
        metafunc.parametrize("scenario", scenarios, ids=[s.name for s in scenarios])


def test_scenario_keeps_every_post_exactly_once(
    scenario: Scenario,
    request: pytest.FixtureRequest,
    services: Services,
    stack_endpoints: StackEndpoints,
    faults_broker: ProxiedBroker,
    fresh_database: str,
    group_id: str,
    bundle_path: Path,
    tmp_path: Path,
    faults_seed: int,
    fault_outcomes: list[Outcome],
) -> None:
    stack = request.getfixturevalue("embedded_stack") if scenario.needs_stack else services.stack
    posts_topic = f"posts-{group_id}"
    dead_letter_topic = f"dlq-{group_id}"
    faults_broker.create_topics({posts_topic: PARTITIONS, dead_letter_topic: 1})
    env = Environment(
        broker=faults_broker,
        stack=stack,
        redis_url=stack_endpoints.redis_url,
        dsn=fresh_database,
        bundle_path=bundle_path,
        logs=tmp_path / "logs",
        posts_topic=posts_topic,
        dead_letter_topic=dead_letter_topic,
        group_id=group_id,
    )
    outcome = Runner(scenario, env, faults_seed).run()
    fault_outcomes.append(outcome)
    assert outcome.exact, f"{outcome.problems()}; logs in {env.logs}"


# ---- the harness itself, without services -------------------------------------------------


def test_ledger_orders_repeats_after_their_first_version() -> None:
    ledger = build_ledger(random.Random(1), "m", posts=200, repeats=20, poison_rounds=1)
    first: dict[str, int] = {}
    for position, (_, value) in enumerate(ledger.messages):
        entry = ledger.entries[value]
        if entry.kind == "post":
            first[entry.post_id or ""] = position
        elif entry.kind == "repeat":
            assert first[entry.post_id or ""] < position
    assert ledger.posts == 200
    assert ledger.poison == 11
    assert len(ledger.messages) == 200 + 20 + 11


def test_fault_moments_are_seeded_and_spaced() -> None:
    draw: Callable[[int], list[float]] = lambda seed: spread(random.Random(seed), 5, 1, 30, 2)  # noqa: E731
    assert draw(3) == draw(3)
    moments = draw(3)
    assert all(b - a >= 2 for a, b in itertools.pairwise(moments))
    assert moments[0] >= 1 and moments[-1] <= 30
