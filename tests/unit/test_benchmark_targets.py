"""benchmarks.targets: the saturation targets of a run, from its e2e records."""

from __future__ import annotations

import pytest

from benchmarks.targets import run_targets, targets_table


def records(model: float, one: float, two: float, consumer_us: float) -> list[dict[str, object]]:
    servers = {"kafka_cpu_us_per_post": 1.0, "redis_cpu_us_per_post": 4.0}
    return [
        {"scenario": "model_only", "model_posts_per_s": model},
        {"scenario": "saturation-1-no-inference-thread", "sustained_posts_per_s": one},
        {
            "scenario": "saturation-2-no-inference-thread",
            "sustained_posts_per_s": two,
            "consumer_cpu_us_per_post": consumer_us,
            "postgres_cpu_us_per_post": None,  # a server that was not measured counts 0
            **servers,
        },
    ]


def test_figures_of_a_run() -> None:
    row = run_targets("r", records(model=25_000, one=12_500, two=20_000, consumer_us=75.0))
    assert row is not None
    assert row.model_us == pytest.approx(40.0)
    assert row.servers_us == pytest.approx(5.0)
    assert row.share_of_bound == pytest.approx(20_000 * 80.0 / 2e6)
    assert (row.ratio, row.scaling) == (pytest.approx(0.5), pytest.approx(1.6))
    assert row.both_met and row.within_bound  # 80 <= 2.25 x 40


def test_a_run_over_the_bound_or_short_of_a_target() -> None:
    row = run_targets("r", records(model=25_000, one=12_000, two=20_000, consumer_us=90.0))
    assert row is not None
    assert not row.both_met  # ratio 0.48
    assert not row.within_bound  # 95 > 90
    assert "both targets met in 0" in targets_table([row])


def test_a_run_without_the_thread_off_scenarios_is_skipped() -> None:
    assert run_targets("r", records(25_000, 12_500, 20_000, 75.0)[:2]) is None


def test_the_busy_rate_is_used_where_it_was_measured() -> None:
    runs = records(model=25_000, one=12_500, two=18_000, consumer_us=75.0)
    runs[2]["busy_posts_per_s"] = 20_000  # the two consumers, while both had posts left
    row = run_targets("r", runs)
    assert row is not None
    assert row.scaling == pytest.approx(1.6)
