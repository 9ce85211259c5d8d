"""The saturation targets, run by run, from the JSON files that `benchmarks.e2e` wrote.

    python -m benchmarks.targets benchmarks/results/e2e-20261203T*.json

For each run with the model alone and one and two consumers without the inference thread:
M, the model alone's time per post; C, the two consumers' CPU per post (the model included);
S, the servers' (broker, Redis, PostgreSQL); how much of the two cores' bound 2 / (C + S) the
two consumers reached; the ratio of one consumer to the model alone; two consumers over one.
One consumer without the thread runs its model and its Python in series, so half the model's
rate needs it to spend at most 2 M per post, and 1.6 times that with two processes needs the
cores' bound to allow 0.8 / M: both targets at once need C + S <= 2.25 M at the 90 % of the
bound that two consumers reach here (README, Performance).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from common.cli import documented_parser

RATIO_TARGET = 0.5  # one consumer over the model alone
SCALING_TARGET = 1.6  # two consumers over one
CORES = 2
SHARE_OF_CORES = 0.9  # of the bound 2 / (C + S) that two consumers reach here (88-99 %)
# Both targets: 2 x 0.9 / (C + S) >= 1.6 x 0.5 / M, so C + S at most this many M (2.25).
BOTH_BOUND = round(CORES * SHARE_OF_CORES / (SCALING_TARGET * RATIO_TARGET), 2)
SERVERS = ("kafka_cpu_us_per_post", "redis_cpu_us_per_post", "postgres_cpu_us_per_post")


class RunTargets(NamedTuple):
    run: str
    model_us: float  # M
    consumer_us: float  # C
    servers_us: float  # S
    share_of_bound: float  # two consumers' rate over 2 / (C + S)
    ratio: float  # one consumer over the model alone
    scaling: float  # two consumers over one

    @property
    def both_met(self) -> bool:
        return self.ratio >= RATIO_TARGET and self.scaling >= SCALING_TARGET

    @property
    def within_bound(self) -> bool:
        return self.consumer_us + self.servers_us <= BOTH_BOUND * self.model_us


def saturation_rate(record: dict[str, Any]) -> float:
    """The rate while every consumer was busy (benchmarks.busy), or, in runs before it was
    measured, the middle 80 % of rows over the time they took."""
    busy = record.get("busy_posts_per_s")
    return float(busy if busy is not None else record["sustained_posts_per_s"])


def run_targets(run: str, records: Sequence[dict[str, Any]]) -> RunTargets | None:
    """The run's figures, or None if it lacks one of the three scenarios."""
    by_scenario = {record["scenario"]: record for record in records}
    model = by_scenario.get("model_only", {}).get("model_posts_per_s")
    one = by_scenario.get("saturation-1-no-inference-thread")
    two = by_scenario.get("saturation-2-no-inference-thread")
    if not (model and one and two):
        return None
    consumer_us = two["consumer_cpu_us_per_post"]
    servers_us = sum(two.get(key) or 0.0 for key in SERVERS)
    two_rate, one_rate = saturation_rate(two), saturation_rate(one)
    return RunTargets(
        run=run,
        model_us=1e6 / model,
        consumer_us=consumer_us,
        servers_us=servers_us,
        share_of_bound=two_rate * (consumer_us + servers_us) / 2e6,
        ratio=one_rate / model,
        scaling=two_rate / one_rate,
    )


def targets_table(rows: Sequence[RunTargets]) -> str:
    lines = [
        f"| run | M µs | C µs | S µs | C + S | {BOTH_BOUND} M | share of 2 / (C + S) "
        "| 1, off: ratio | 2 / 1, off | both met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        total, bound = row.consumer_us + row.servers_us, BOTH_BOUND * row.model_us
        lines.append(
            f"| {row.run} | {row.model_us:.1f} | {row.consumer_us:.1f} | {row.servers_us:.1f} "
            f"| {total:.1f} | {bound:.1f} | {row.share_of_bound:.0%} | {row.ratio:.2f} "
            f"| {row.scaling:.2f} | {'yes' if row.both_met else 'no'} |"
        )
    within = [row for row in rows if row.within_bound]
    lines.append(
        f"\n{len(rows)} runs: {len(within)} within C + S <= {BOTH_BOUND} M; both targets met in "
        f"{sum(row.both_met for row in rows)} ({sum(row.both_met for row in within)} of them "
        f"within the bound)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = documented_parser("python -m benchmarks.targets", __doc__)
    parser.add_argument("results", type=Path, nargs="+", help="e2e-*.json files")
    args = parser.parse_args(argv)
    rows = []
    for path in sorted(args.results):
        records = json.loads(path.read_text())["records"]
        figures = run_targets(path.stem.removeprefix("e2e-"), records)
        if figures is not None:
            rows.append(figures)
    print(targets_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
